"""The runner's data: images decoded once into memory, then a tf.data pipeline.

Two sources:

* `--image_folder=PATH`: `PATH/train/<class>/*` and `PATH/test/<class>/*`
  (JPEG, PNG, BMP or GIF; class folders sorted -> labels 0..n-1; all images of
  one size; 16-bit PNGs reduced to 8 bits by their high byte). Only the images
  a run uses are decoded (a `--train_subset` decodes just its subset), with
  Pillow in a few threads (about 5x faster than TensorFlow's per-file decode
  ops for small files, and TensorFlow-free).
* `--dataset=cifar10`: tensorflow-datasets, from `--data_dir`; downloaded on
  first use when the network is reachable, otherwise an error within seconds.

Both give uint8 arrays (`Arrays`). `make_datasets` turns them into the training
pipeline: a new seeded permutation each epoch, batch, augmentation on whole
batches (4-pixel zero pad + random crop, horizontal flip; per-image offsets and
flips from stateless seeds of (seed, epoch, batch)), per-channel normalisation
with the mean and std of the training images in use, prefetch. The validation
pipeline is the test split (or its `--val_subset`), normalised the same way, unshuffled.

TensorFlow is imported only inside the functions that need it (tensorflow-
datasets, the tf.data pipelines): listing and decoding an image folder into
numpy arrays needs none.
"""

import concurrent.futures
import dataclasses
import hashlib
import os
import socket
import threading

import numpy as np
import PIL.Image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
# Known split sizes, so flags can be checked before any data is read.
DATASET_SIZES = {"cifar10": {"train": 50_000, "test": 10_000, "classes": 10}}
# Where tensorflow-datasets downloads each dataset from (checked before trying).
_DOWNLOAD_HOSTS = {"cifar10": "www.cs.toronto.edu"}
_NETWORK_TIMEOUT_S = 10.0
PAD = 4


class DataError(Exception):
    """The data cannot be read; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class ImageFolder:
    """The files of a `train/<class>/*`, `test/<class>/*` tree (no pixels read)."""

    root: str
    classes: tuple
    train_files: tuple
    train_labels: tuple
    test_files: tuple
    test_labels: tuple


@dataclasses.dataclass(frozen=True)
class Arrays:
    """Decoded images (uint8, NHWC) and int32 labels, plus normalisation stats."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple
    mean: tuple
    std: tuple


def list_image_folder(root):
    """Lists an image folder without reading any image.

    Raises:
        DataError: if `root` is missing or not a `train/<class>/*`,
            `test/<class>/*` tree of images with the same classes in both.
    """
    if os.path.exists(root) and not os.path.isdir(root):
        raise DataError(f"{root!r} is not a directory (expected a folder with train/<class>/* "
                        "and test/<class>/*)")
    if not os.path.isdir(root):
        raise DataError(f"no such directory {root!r} (expected train/<class>/* and test/<class>/*)")
    found = {}
    for split in ("train", "test"):
        found[split] = _list_split(root, split)
    train_classes, test_classes = found["train"][0], found["test"][0]
    if train_classes != test_classes:
        raise DataError(f"train/ and test/ must hold the same class folders, received "
                        f"train: {', '.join(train_classes)}; test: {', '.join(test_classes)}")
    return ImageFolder(root, train_classes, *found["train"][1:], *found["test"][1:])


def _list_split(root, split):
    directory = os.path.join(root, split)
    if not os.path.isdir(directory):
        raise DataError(f"{root!r} has no {split}/ folder (expected train/<class>/* and test/<class>/*)")
    entries = [e for e in os.scandir(directory) if not e.name.startswith(".")]
    strays = [e.name for e in entries if not e.is_dir()]
    if strays:
        raise DataError(f"{directory!r} must hold only class folders, found file {strays[0]!r}")
    classes = tuple(sorted(e.name for e in entries))
    if not classes:
        raise DataError(f"{directory!r} has no class folders")
    files, labels = [], []
    for label, name in enumerate(classes):
        folder = os.path.join(directory, name)
        names = sorted(e.name for e in os.scandir(folder) if not e.name.startswith("."))
        if not names:
            raise DataError(f"class folder {folder!r} has no images")
        for file_name in names:
            if not file_name.lower().endswith(IMAGE_EXTENSIONS):
                raise DataError(f"{os.path.join(folder, file_name)!r} is not an image "
                                f"({', '.join(IMAGE_EXTENSIONS)})")
        files += [os.path.join(folder, n) for n in names]
        labels += [label] * len(names)
    return classes, tuple(files), tuple(labels)


def fingerprint(folder):
    """What an `ImageFolder` holds, wherever it lies (config.json's "data"; no image read).

    Returns:
        {"source": "image_folder", "classes": [...], "counts": {"train": [images per
        class], "test": [...]}, "files_sha256": the SHA-256 of the sorted file paths
        relative to the folder, "/"-separated, one per line}: equal for two copies of
        the same files, different when a file is added, removed or renamed.
    """
    prefix = len(os.path.join(folder.root, ""))
    relative = sorted(path[prefix:].replace(os.sep, "/")
                      for path in folder.train_files + folder.test_files)
    counts = {split: [labels.count(k) for k in range(len(folder.classes))]
              for split, labels in (("train", folder.train_labels), ("test", folder.test_labels))}
    return {"source": "image_folder", "classes": list(folder.classes), "counts": counts,
            "files_sha256": hashlib.sha256("\n".join(relative).encode()).hexdigest()}


def tfds_fingerprint(name, data_dir):
    """{"source": "tfds", "dataset": name, "version": the prepared builder's} (config.json's "data")."""
    import tensorflow_datasets as tfds

    return {"source": "tfds", "dataset": name,
            "version": str(tfds.builder(name, data_dir=data_dir).version)}


def subset_indices(labels, size, seed):
    """`size` indices into `labels`, stratified by class, seeded, sorted.

    Each class gets floor(size * its share); the images left over go to the
    classes with the largest remainders (ties broken by the seed).
    """
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    exact = size * counts / counts.sum()
    quota = np.floor(exact).astype(np.int64)
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(classes)), -(exact - quota)))
    quota[order[: size - quota.sum()]] += 1
    picked = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(picked))


def load(config):
    """Reads the run's training and test images (or their subsets) into `Arrays`.

    --train_subset and --val_subset are `subset_indices` of their split, both seeded by
    --seed; an image folder decodes only the images kept.

    Raises:
        DataError: unreadable images, or a dataset neither prepared nor downloadable.
    """
    subset, val_subset = config.flags["train_subset"], config.flags["val_subset"]
    if config.flags["image_folder"] is not None:
        folder = list_image_folder(config.flags["image_folder"])
        train_files, y_train = np.asarray(folder.train_files), np.asarray(folder.train_labels)
        if subset is not None:
            keep = subset_indices(y_train, subset, config.flags["seed"])
            train_files, y_train = train_files[keep], y_train[keep]
        test_files, y_test = np.asarray(folder.test_files), np.asarray(folder.test_labels)
        if val_subset is not None:
            keep = subset_indices(y_test, val_subset, config.flags["seed"])
            test_files, y_test = test_files[keep], y_test[keep]
        x_train, x_test = _decode_files(train_files), _decode_files(test_files)
        classes = folder.classes
    else:
        (x_train, y_train), (x_test, y_test), classes = _load_tfds(
            config.flags["dataset"], config.flags["data_dir"])
        if subset is not None:
            if subset > len(y_train):
                raise DataError(f"--train_subset={subset} exceeds the {len(y_train)} training images")
            keep = subset_indices(y_train, subset, config.flags["seed"])
            x_train, y_train = x_train[keep], y_train[keep]
        if val_subset is not None:
            if val_subset > len(y_test):
                raise DataError(f"--val_subset={val_subset} exceeds the {len(y_test)} test images")
            keep = subset_indices(y_test, val_subset, config.flags["seed"])
            x_test, y_test = x_test[keep], y_test[keep]
    if x_test.shape[1:] != x_train.shape[1:]:
        raise DataError(f"test images are {x_test.shape[1:3]}, training images {x_train.shape[1:3]}")
    mean, std = channel_stats(x_train)
    return Arrays(x_train, y_train.astype(np.int32), x_test, np.asarray(y_test, np.int32),
                  tuple(classes), mean, std)


def channel_stats(images, chunk=4096):
    """Per-channel mean and std of uint8 images, on the 0..1 scale (float64 sums)."""
    total = np.zeros(images.shape[-1])
    squares = np.zeros(images.shape[-1])
    for start in range(0, len(images), chunk):
        block = images[start:start + chunk].reshape(-1, images.shape[-1]).astype(np.float64)
        total += block.sum(axis=0)
        squares += np.square(block).sum(axis=0)
    count = images.size / images.shape[-1]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    return tuple(float(m) / 255 for m in mean), tuple(max(float(s), 1e-3) / 255 for s in std)


def _decode_files(paths, chunk=512):
    """Decodes image files with Pillow (threads) into one uint8 array [n, h, w, 3].

    Every image must have the size of the first; grayscale, palette and alpha
    images are converted to RGB.
    """
    paths = [str(p) for p in paths]
    first = _decode_image(paths[0])
    images = np.empty((len(paths), *first.shape), np.uint8)

    def decode_chunk(start):
        for i in range(start, min(start + chunk, len(paths))):
            image = _decode_image(paths[i])
            if image.shape != first.shape:
                raise DataError(f"{paths[i]} is {image.shape[1]}x{image.shape[0]} pixels, the "
                                f"first image ({paths[0]}) {first.shape[1]}x{first.shape[0]}: "
                                "all images must have one size")
            images[i] = image

    with concurrent.futures.ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
        list(pool.map(decode_chunk, range(0, len(paths), chunk)))
    return images


def _decode_image(path):
    try:
        with PIL.Image.open(path) as image:
            if image.mode.startswith("I;16") or (image.mode == "I" and image.format == "PNG"):
                return _from_16_bit_gray(np.asarray(image))
            if image.mode in ("I", "F"):
                raise DataError(f"cannot decode {path}: 32-bit {image.mode} images are not "
                                "supported (convert them to 8 bits per channel)")
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as error:  # PIL.UnidentifiedImageError is an OSError
        raise DataError(f"cannot decode {path}: {error}") from None


def _from_16_bit_gray(pixels):
    """A 16-bit grayscale image as 8-bit RGB: the high byte of each value.

    Pillow reads 16-bit colour PNGs the same way (the high byte); its RGB
    conversion of 16-bit grayscale would clip every value above 255 to 255.
    """
    high = (np.clip(pixels.astype(np.int64), 0, 65535) >> 8).astype(np.uint8)
    return np.repeat(high[..., None], 3, axis=-1)


def _load_tfds(name, data_dir):
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        _check_download_reachable(name, builder.data_dir)
        builder.download_and_prepare()
    arrays = []
    for split in ("train", "test"):
        batches = list(tfds.as_numpy(builder.as_dataset(split=split).batch(4096)))
        arrays.append((np.concatenate([b["image"] for b in batches]).astype(np.uint8),
                       np.concatenate([b["label"] for b in batches])))
    classes = tuple(builder.info.features["label"].names)
    return arrays[0], arrays[1], classes


def _check_download_reachable(name, data_dir):
    """Raises DataError within seconds when the download host is unreachable."""
    host = _DOWNLOAD_HOSTS[name]
    outcome = []

    def probe():
        try:
            socket.create_connection((host, 443), timeout=_NETWORK_TIMEOUT_S).close()
            outcome.append(True)
        except OSError:
            outcome.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(_NETWORK_TIMEOUT_S + 1)
    if outcome != [True]:
        raise DataError(
            f"{name} is not prepared in --data_dir ({data_dir}) and cannot be downloaded "
            f"({host} unreachable). Prepare it where there is network (tfds build {name} "
            "--data_dir=DIR), copy DIR here and pass --data_dir=DIR, or pass "
            "--image_folder=PATH with train/<class>/* and test/<class>/* images")


@dataclasses.dataclass(frozen=True)
class Pipelines:
    """The tf.data pipelines; call `set_epoch(epoch)` before each epoch's iteration."""

    train: object
    val: object
    set_epoch: object


def make_datasets(arrays, config):
    """Training and validation tf.data pipelines of normalised float32 batches.

    The order and augmentation of epoch e are a pure function of (seed, e): a
    stateless permutation per epoch and a stateless seed per (epoch, batch),
    read from an epoch counter that `Pipelines.set_epoch` sets. A resumed run
    therefore sees exactly the batches an uninterrupted run would.
    """
    import tensorflow as tf

    batch_size, seed = config.flags["batch_size"], config.flags["seed"]
    augment = config.flags["augment"]
    x_train, y_train = tf.constant(arrays.x_train), tf.constant(arrays.y_train)
    x_test, y_test = tf.constant(arrays.x_test), tf.constant(arrays.y_test)
    mean = tf.constant(np.multiply(arrays.mean, 255), tf.float32)
    std = tf.constant(np.multiply(arrays.std, 255), tf.float32)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    n = len(arrays.y_train)

    def epoch_order(_):
        keys = tf.random.stateless_uniform([n], tf.stack([tf.constant(seed, tf.int64), epoch]))
        return tf.data.Dataset.from_tensor_slices(tf.argsort(keys))

    def train_batch(index, indices):
        images = tf.gather(x_train, indices)  # uint8: augmented before the cast
        if augment:
            epoch_seed = tf.stack([tf.constant(seed, tf.int64), epoch])
            images = augment_batch(images, tf.random.experimental.stateless_fold_in(
                epoch_seed, index))
        return (tf.cast(images, tf.float32) - mean) / std, tf.gather(y_train, indices)

    def test_batch(indices):
        images = tf.cast(tf.gather(x_test, indices), tf.float32)
        return (images - mean) / std, tf.gather(y_test, indices)

    train = tf.data.Dataset.range(1).flat_map(epoch_order).batch(batch_size).enumerate().map(
        train_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    train = train.apply(tf.data.experimental.assert_cardinality(-(-n // batch_size)))
    test = tf.data.Dataset.range(len(arrays.y_test)).batch(batch_size).map(
        test_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return Pipelines(train.prefetch(tf.data.AUTOTUNE), test.prefetch(tf.data.AUTOTUNE),
                     lambda e: epoch.assign(e))


def augment_batch(images, seed):
    """Random crop after a `PAD`-pixel zero pad, and horizontal flip, per image.

    One gather from the padded batch: the index of each output pixel holds the
    image's crop offsets, and for a flipped image the column `width - 1 - j`.

    Args:
        images: [batch, height, width, channels], any dtype (the runner's uint8).
        seed: int [2], the stateless seed of this batch.
    """
    import tensorflow as tf

    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    batch = tf.shape(images)[0]
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    padded = tf.pad(images, [[0, 0], [PAD, PAD], [PAD, PAD], [0, 0]])
    offsets = tf.random.stateless_uniform([batch, 2], crop_seed, 0, 2 * PAD + 1, tf.int32)
    flip = tf.random.stateless_uniform([batch, 1, 1, 1], flip_seed) < 0.5
    rows = offsets[:, :1] + tf.range(height)[None, :]
    columns = tf.where(flip[:, 0, 0], tf.range(width - 1, -1, -1)[None, :],
                       tf.range(width)[None, :])
    cols = offsets[:, 1:] + columns
    padded_height, padded_width = height + 2 * PAD, width + 2 * PAD
    pixel = (tf.range(batch)[:, None, None] * (padded_height * padded_width)
             + rows[:, :, None] * padded_width + cols[:, None, :])
    return tf.gather(tf.reshape(padded, [-1, channels]), pixel)
