"""The three model families, all :class:`~vqlearn.models.base.Tokenizer` s."""

from vqlearn.models.base import Tokenizer, VQOutput
from vqlearn.models.vqgan import VQGAN, DDConfig
from vqlearn.models.vqvae import VQVAE
from vqlearn.models.vqvae2 import VQVAE2

__all__ = ["Tokenizer", "VQOutput", "VQVAE", "VQVAE2", "VQGAN", "DDConfig"]
