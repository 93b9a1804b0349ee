"""Evaluation: image metrics, Inception FID/KID, and the `eval` command with its report."""
