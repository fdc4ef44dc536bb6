"""Datasets read from disk under ``root``: torchvision's sets and any folder of images.

The torchvision sets are ``torchvision-mnist``, ``fashion-mnist`` and ``cifar10``;
``folder`` is every image under a directory (:class:`ImageFolder`).

Files are fetched only with ``download=True`` (torchvision's sets); a missing
dataset is an error that says where the files were expected and what to do.
Every item is ``(C, S, S)`` float32 in ``[-1, 1]``.

Book: chapter "Images as tensors".
"""

from __future__ import annotations

import hashlib
import os
import warnings

import numpy as np
import torch
from PIL import Image, ImageOps

from vqlearn.data.base import SPLITS, Request, SeededDataset, check_positive_int, check_split
from vqlearn.errors import DataError, DataNotFoundError
from vqlearn.images import uint8_to_tensor

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm")
"""File endings (case-insensitive) that :class:`ImageFolder` reads."""

_DOWNLOAD_HINT = "pass download=True (python -m vqlearn.train: --set data.download=true)"


def _fit(img: Image.Image, image_size: int) -> Image.Image:
    """Resize the shorter side to ``image_size`` and center-crop to ``image_size x image_size``."""
    if img.size == (image_size, image_size):
        return img
    return ImageOps.fit(img, (image_size, image_size), method=Image.Resampling.BICUBIC)


# ----------------------------------------------------------------------------
# torchvision's datasets


class TorchvisionImages(SeededDataset):
    """The images of a torchvision dataset (labels dropped) -> ``(C, S, S)`` float32 in ``[-1, 1]``.

    ``mode`` is the PIL mode the images are converted to (``"L"``: C = 1,
    ``"RGB"``: C = 3). ``image_size`` resizes (shorter side) and center-crops;
    ``flip`` mirrors left-right with probability 1/2 from the item's own generator.
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
        x = uint8_to_tensor(np.asarray(img))
        if self.flip and self._rng(index).random() < 0.5:
            x = x.flip(-1)
        return x


def _torchvision_dataset(name: str, class_name: str, folder: str, split: str, root: str, download: bool):
    """Build torchvision's ``class_name``, turning "not found" into an error that says what to do."""
    try:
        import torchvision.datasets as tvd
    except ImportError as err:
        raise ImportError(f"dataset {name!r} needs torchvision: pip install torchvision") from err
    cls = getattr(tvd, class_name)
    try:
        return cls(root, train=(split == "train"), download=download)
    except RuntimeError as err:
        if download:
            raise RuntimeError(f"could not download dataset {name!r} into root={root!r} ({err}); "
                               "are you offline? Place the files there yourself instead") from err
        raise DataNotFoundError(
            f"dataset {name!r} not found under root={root!r} (expected {os.path.join(root, folder)}); "
            f"{_DOWNLOAD_HINT} to download it, or place the files there"
        ) from err
    except OSError as err:  # URLError and friends when downloading offline
        if not download:
            raise
        raise RuntimeError(f"could not download dataset {name!r} into root={root!r} ({err}); "
                           "are you offline? Place the files there yourself instead") from err


def build_torchvision(class_name: str, folder: str, request: Request) -> TorchvisionImages:
    """torchvision's dataset ``class_name``, whose files sit in ``root/folder``, as :class:`TorchvisionImages`."""
    base = _torchvision_dataset(request.name, class_name, folder, request.split, request.root, request.download)
    return TorchvisionImages(base, mode="RGB" if request.channels == 3 else "L", image_size=request.image_size,
                             flip=request.flip, seed=request.seed, fixed=request.fixed)


# ----------------------------------------------------------------------------
# a folder of images


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
        self.image_size = check_positive_int(image_size, "image_size")
        check_split(split)
        if not os.path.isdir(root):
            what = ("is a file, not a directory of images" if os.path.exists(root)
                    else "is not a directory (it does not exist)")
            raise DataNotFoundError(f"dataset 'folder': root={root!r} {what}")
        self.root = root
        self.flip = flip
        has_split_dirs = any(os.path.isdir(os.path.join(root, s)) for s in SPLITS)
        if has_split_dirs:
            top = os.path.join(root, split)
            if not os.path.isdir(top):
                raise DataNotFoundError(
                    f"dataset 'folder': root={root!r} has split folders but no {split!r} folder ({top}); "
                    f"add {top}, or remove the train/test folders to split the images by a hash of their names")
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
            found = f"{len(bad)} unreadable file(s)" if bad else "no image files"
            raise DataError(f"dataset 'folder': no readable images of split {split!r} under root={root!r} "
                            f"({found}; read: {', '.join(IMAGE_EXTENSIONS)})")
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
            return uint8_to_tensor(np.asarray(img))

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
        raise DataError(f"dataset 'folder': none of the {len(self.paths)} images under {self.root!r} decodes")


def build_folder(request: Request) -> ImageFolder:
    """``folder``: every image under ``request.root`` as ``(3, S, S)`` (see :class:`ImageFolder`)."""
    return ImageFolder(request.root, request.image_size, request.split, flip=request.flip, seed=request.seed,
                       fixed=request.fixed)
