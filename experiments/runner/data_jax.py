"""The runner's input path on Keras's JAX backend: images on the device, no TensorFlow.

`experiments.runner.data.make_datasets` builds tf.data pipelines. On the JAX backend the
runner uses `make_datasets` here instead: the same contract (`data.Pipelines`,
`set_epoch(epoch)` before each epoch) and the same rules, with the work on the
accelerator:

* the decoded uint8 images and their labels are copied to the device once
  (50,000 CIFAR-10 images: 150 MB); per batch only its indices travel;
* epoch e visits the training images in a permutation that is a pure function
  of (seed, e) (numpy's generator seeded with [seed, e]: the TF path's rule,
  not its permutation), in ceil(n / batch_size) batches, the last one smaller;
* one jit-compiled function per batch gathers the images, augments them in
  uint8 (with `--augment`: 4-pixel zero pad + random crop, horizontal flip,
  per image, from a stateless key of (seed, e, batch)) and normalises them per
  channel with the mean and std of the training images in use, as in the TF
  path.

A resumed run therefore sees exactly the batches an uninterrupted one would.
The validation batches are the test split (or its `--val_subset`, chosen by
`data.load`) in order, normalised the same way.
Batches are `keras.utils.PyDataset` items: JAX dispatches each one
asynchronously, so the next batch is prepared while the device trains.
"""

import jax
import keras
import numpy as np
from keras import ops

from experiments.runner.data import PAD, Pipelines


def make_datasets(arrays, config):
    """`data.Pipelines` of normalised float32 device batches (see the module doc)."""
    batch_size, seed = config.flags["batch_size"], config.flags["seed"]
    train = DeviceBatches(arrays.x_train, arrays.y_train, batch_size, arrays.mean, arrays.std,
                          seed=seed, augment=config.flags["augment"])
    val = DeviceBatches(arrays.x_test, arrays.y_test, batch_size, arrays.mean, arrays.std)
    return Pipelines(train, val, train.set_epoch)


class DeviceBatches(keras.utils.PyDataset):
    """Batches of images kept on the device.

    Args:
        images: uint8 [n, height, width, channels]; labels: int [n].
        batch_size: images per batch (the last batch holds the rest).
        mean, std: per-channel statistics on the 0..1 scale.
        seed: shuffle each epoch with this seed (`set_epoch`); None: in order.
        augment: pad + random crop + flip (needs a seed).
    """

    def __init__(self, images, labels, batch_size, mean, std, seed=None, augment=False):
        super().__init__()
        if augment and seed is None:
            raise ValueError("DeviceBatches: augment needs a seed, received seed=None")
        self.images = ops.convert_to_tensor(images)
        self.labels = ops.convert_to_tensor(labels, "int32")
        self.size, self.batch_size = len(labels), batch_size
        self.mean = ops.convert_to_tensor(np.multiply(mean, 255), "float32")
        self.std = ops.convert_to_tensor(np.multiply(std, 255), "float32")
        self.seed, self.augment = seed, augment
        if augment:  # threefry's key of a 64-bit seed: [high, low] 32-bit words
            self.key = jax.random.wrap_key_data(
                np.array([(seed >> 32) & 0xFFFFFFFF, seed & 0xFFFFFFFF], np.uint32))
        self.set_epoch(0)

    def set_epoch(self, epoch):
        """Makes the batches those of `epoch` (its order and augmentation)."""
        self.epoch = int(epoch)
        if self.seed is None:
            self.order = np.arange(self.size, dtype=np.int32)
        else:
            rng = np.random.default_rng([self.seed, self.epoch])
            self.order = rng.permutation(self.size).astype(np.int32)

    def __len__(self):
        return -(-self.size // self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        indices = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        if self.augment:
            return _augmented_batch(self.images, self.labels, indices, self.mean, self.std,
                                    self.key, self.epoch, index)
        return _batch(self.images, self.labels, indices, self.mean, self.std)


@jax.jit
def _batch(images, labels, indices, mean, std):
    batch = ops.cast(ops.take(images, indices, axis=0), "float32")
    return (batch - mean) / std, ops.take(labels, indices, axis=0)


@jax.jit
def _augmented_batch(images, labels, indices, mean, std, key, epoch, index):
    key = jax.random.fold_in(jax.random.fold_in(key, epoch), index)
    batch = ops.cast(augment_batch(ops.take(images, indices, axis=0), key), "float32")
    return (batch - mean) / std, ops.take(labels, indices, axis=0)


def augment_batch(images, key):
    """Random crop after a `PAD`-pixel zero pad, and horizontal flip, per image.

    Args:
        images: [batch, height, width, channels] (any dtype).
        key: a JAX PRNG key; the same key gives the same crops and flips.

    Returns:
        The augmented images, same shape and dtype.
    """
    crop_key, flip_key = jax.random.split(key)
    batch, height, width = images.shape[:3]
    padded = ops.pad(images, [[0, 0], [PAD, PAD], [PAD, PAD], [0, 0]])
    offsets = jax.random.randint(crop_key, (batch, 2), 0, 2 * PAD + 1)
    rows = offsets[:, :1] + ops.arange(height)[None, :]
    cols = offsets[:, 1:] + ops.arange(width)[None, :]
    cropped = ops.take_along_axis(padded, rows[:, :, None, None], axis=1)
    cropped = ops.take_along_axis(cropped, cols[:, None, :, None], axis=2)
    flip = jax.random.bernoulli(flip_key, 0.5, (batch, 1, 1, 1))
    return ops.where(flip, ops.flip(cropped, axis=2), cropped)
