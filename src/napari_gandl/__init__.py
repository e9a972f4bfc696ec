"""napari-gandl: browse RxRx-style fluorescence screens and learn GAN-DL embeddings."""

__version__ = "0.1.0"
