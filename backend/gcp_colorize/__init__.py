"""GCP Colorize: vivid and diverse colorization with a generative colour prior.

Sub-packages by role:
  core/        wire protocol, connection file, client, host-independent plugin logic
               (stdlib + pyzmq + msgpack only: this folder is copied into the host plugins)
  model/       the GCP networks in plain PyTorch, one module per network
  service/     the backend process (ZeroMQ ROUTER, job queue)
  data/        training-photo preparation
  training/    the training stages
  evaluation/  quality metrics and the report
"""

__version__ = "0.1.0"
