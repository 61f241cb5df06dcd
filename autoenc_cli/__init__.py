"""autoenc: train and run the seed's convolutional image autoencoder."""

__version__ = "0.1.0"
