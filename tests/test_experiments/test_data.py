"""experiments.runner.data: image-folder listing and decoding, subsets, statistics, the tf.data pipelines."""

import os
import types

import numpy as np
import pytest
from PIL import Image
from run_helpers import make_image_folder

from experiments.runner import data


def config(**flags):
    defaults = {"batch_size": 8, "seed": 0, "augment": True, "train_subset": None, "val_subset": None,
                "image_folder": None, "dataset": "cifar10", "data_dir": None}
    return types.SimpleNamespace(flags={**defaults, **flags})


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("images"), classes=3, train_per_class=5,
                             test_per_class=2, formats=("png",))


def test_listing_sorts_classes_into_labels(folder):
    listing = data.list_image_folder(folder)
    assert listing.classes == ("class0", "class1", "class2")
    assert listing.train_labels == (0,) * 5 + (1,) * 5 + (2,) * 5
    assert listing.test_labels == (0, 0, 1, 1, 2, 2)
    assert listing.train_files[5].endswith(os.path.join("train", "class1", "0000.png"))


def test_load_decodes_png_exactly_and_labels_match(folder):
    arrays = data.load(config(image_folder=folder))
    assert arrays.x_train.shape == (15, 32, 32, 3) and arrays.x_train.dtype == np.uint8
    expected = np.asarray(Image.open(os.path.join(folder, "train", "class2", "0003.png")))
    np.testing.assert_array_equal(arrays.x_train[13], expected)
    np.testing.assert_array_equal(arrays.y_test, [0, 0, 1, 1, 2, 2])
    assert arrays.classes == ("class0", "class1", "class2")


def test_load_subset_is_stratified_and_seeded(folder):
    arrays = data.load(config(image_folder=folder, train_subset=6))
    assert np.bincount(arrays.y_train).tolist() == [2, 2, 2]
    again = data.load(config(image_folder=folder, train_subset=6))
    np.testing.assert_array_equal(arrays.x_train, again.x_train)
    other = data.load(config(image_folder=folder, train_subset=6, seed=5))
    assert not np.array_equal(arrays.x_train, other.x_train)


def test_images_of_another_size_are_an_error_naming_the_file(tmp_path):
    root = make_image_folder(tmp_path, classes=2, train_per_class=2, test_per_class=1)
    odd = os.path.join(root, "train", "class1", "0001.png")
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(odd)
    with pytest.raises(data.DataError, match="0001.png"):
        data.load(config(image_folder=root))


def test_a_corrupt_image_is_an_error(tmp_path):
    root = make_image_folder(tmp_path, classes=2, train_per_class=2, test_per_class=1)
    with open(os.path.join(root, "test", "class0", "0000.png"), "wb") as f:
        f.write(b"not a png")
    with pytest.raises(data.DataError, match="cannot decode"):
        data.load(config(image_folder=root))


def test_16_bit_grayscale_png_keeps_its_high_byte(tmp_path):
    root = make_image_folder(tmp_path, classes=2, train_per_class=2, test_per_class=1,
                             formats=("png",))
    values = (np.arange(32 * 32).reshape(32, 32) * 64).astype(np.uint16)  # 0 .. 65472
    path = os.path.join(root, "train", "class1", "0001.png")
    Image.fromarray(values).save(path)  # mode I;16: Pillow's RGB conversion clips at 255
    assert Image.open(path).mode == "I;16"
    arrays = data.load(config(image_folder=root))
    expected = np.repeat((values >> 8).astype(np.uint8)[..., None], 3, axis=-1)
    np.testing.assert_array_equal(arrays.x_train[3], expected)


@pytest.mark.parametrize("size", [1, 7, 123, 499, 500])
def test_subset_indices_take_each_class_in_proportion(size):
    labels = np.repeat(np.arange(10), [50] * 5 + [48, 52, 50, 50, 50])
    picked = data.subset_indices(labels, size, seed=1)
    assert len(picked) == len(set(picked)) == size
    counts = np.bincount(labels[picked], minlength=10)
    exact = size * np.bincount(labels) / len(labels)
    assert np.all(np.abs(counts - exact) < 1)
    np.testing.assert_array_equal(picked, data.subset_indices(labels, size, seed=1))


def test_channel_stats_match_numpy():
    images = np.random.default_rng(0).integers(0, 256, (50, 8, 8, 3), dtype=np.uint8)
    mean, std = data.channel_stats(images, chunk=7)
    np.testing.assert_allclose(mean, images.mean(axis=(0, 1, 2)) / 255, rtol=1e-12)
    np.testing.assert_allclose(std, images.std(axis=(0, 1, 2)) / 255, rtol=1e-9)


def test_augment_batch_is_a_padded_crop_or_its_mirror():
    images = np.random.default_rng(0).uniform(1, 255, (64, 32, 32, 3)).astype(np.float32)
    out = data.augment_batch(images, np.array([3, 4], np.int64)).numpy()
    padded = np.pad(images, [(0, 0), (4, 4), (4, 4), (0, 0)])
    offsets, flips = set(), 0
    for i in range(len(images)):
        match = [(dy, dx, flip) for dy in range(9) for dx in range(9) for flip in (False, True)
                 if np.array_equal(out[i], (lambda c: c[:, ::-1] if flip else c)(
                     padded[i, dy:dy + 32, dx:dx + 32]))]
        assert len(match) == 1, i
        offsets.add(match[0][:2])
        flips += match[0][2]
    assert len(offsets) > 20 and 16 < flips < 48  # offsets and flips vary per image
    again = data.augment_batch(images, np.array([3, 4], np.int64)).numpy()
    np.testing.assert_array_equal(out, again)


def _arrays(n_train=20, n_test=6):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n_train + n_test, 32, 32, 3), dtype=np.uint8)
    y = (np.arange(n_train + n_test) % 3).astype(np.int32)
    mean, std = data.channel_stats(x[:n_train])
    return data.Arrays(x[:n_train], y[:n_train], x[n_train:], y[n_train:], ("a", "b", "c"),
                       mean, std)


def test_validation_batches_are_the_normalised_test_images_in_order():
    arrays = _arrays()
    pipelines = data.make_datasets(arrays, config(batch_size=4))
    images = np.concatenate([x.numpy() for x, _ in pipelines.val])
    labels = np.concatenate([y.numpy() for _, y in pipelines.val])
    expected = (arrays.x_test / 255.0 - np.array(arrays.mean)) / np.array(arrays.std)
    np.testing.assert_allclose(images, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(labels, arrays.y_test)


def test_each_epoch_is_a_new_seeded_permutation():
    arrays = _arrays()
    pipelines = data.make_datasets(arrays, config(batch_size=8, augment=False))

    def epoch(e):
        pipelines.set_epoch(e)
        return np.concatenate([x.numpy() for x, _ in pipelines.train])

    first, second, first_again = epoch(0), epoch(1), epoch(0)
    assert len(first) == 20 and sum(1 for _ in pipelines.train) == 3  # ceil(20 / 8)
    np.testing.assert_array_equal(first, first_again)
    assert not np.array_equal(first, second)
    # Without augmentation an epoch holds exactly the normalised training images.
    expected = (arrays.x_train / 255.0 - np.array(arrays.mean)) / np.array(arrays.std)
    key = lambda a: np.sort(a.reshape(len(a), -1)[:, :8], axis=0)  # noqa: E731
    np.testing.assert_allclose(key(first), key(expected), rtol=1e-5, atol=1e-5)
