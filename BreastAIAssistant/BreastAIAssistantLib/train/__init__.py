"""Training and evaluation of the segmentation models (data, sampling, loss, loop, metrics)."""
