"""vqlearn: VQ-VAE, VQ-VAE-2 and VQ-GAN, written to be read, and the package behind the vqlearn book."""

__version__ = "0.1.0"
