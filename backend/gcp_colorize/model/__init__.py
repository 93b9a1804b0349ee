"""The GCP networks in plain PyTorch (one module per network) and their wiring, `gcp.py`."""
