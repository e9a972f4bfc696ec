"""The networks GAN-DL is compared with: a convolutional autoencoder and SimCLR trained on
the plate's tiles, and ImageNet DenseNet-121 (the paper's comparators). The embedding
methods that use them live in :mod:`napari_gandl.embedding.methods`."""
