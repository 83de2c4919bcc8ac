"""slowmask: masked self-supervised pretraining of video (and image) transformers."""

__version__ = "0.1.0"
