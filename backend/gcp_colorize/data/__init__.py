"""Training data: fetch the photo packages, extract, build and serve the cached training set."""
