"""The runner's models, written with `keras.layers` and `keras.ops` only (any backend).

* `simple_cnn`: three blocks of two 3x3 convolutions (32, 64, 128 filters), each
  convolution followed by batch norm and ReLU, 2x2 max pooling after each block,
  global average pooling, a dense classifier: 0.29M parameters.
* `resnet20`: the CIFAR ResNet-20 of He et al. 2016 (section 4.2): a 3x3
  convolution with 16 filters, three stages of three basic blocks (16, 32, 64
  filters; stride 2 at the start of stages 2 and 3), global average pooling, a
  dense classifier; option A shortcuts (identity, or subsample by 2 and pad the
  new channels with zeros: no parameters): 0.27M parameters.

Convolutions have no bias (batch norm follows, moving-average momentum 0.9) and
He-normal initialisation.
`weight_decay` (the L2 coefficient of the total loss, `weight_decay * sum(w**2)`)
applies to every convolution and dense kernel; batch norm and biases are not
decayed. The classifier computes in float32 under a mixed-precision policy.

References:
    He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.
"""

import keras
from keras import layers, ops

MODELS = ("simple_cnn", "resnet20")
# Batch-norm moving averages: new = m * old + (1 - m) * batch. PyTorch's default
# (and that of the CIFAR ResNet references) is m = 0.9; Keras's 0.99 leaves the
# statistics of the random initialisation in the validation pass for the first
# few hundred steps, which spoils the early validation curve of short runs.
BN_MOMENTUM = 0.9


def build(name, input_shape, num_classes, weight_decay=0.0):
    """Returns the uncompiled model `name` (logits output).

    Args:
        name: one of `MODELS`.
        input_shape: (height, width, channels) of the images.
        num_classes: size of the output.
        weight_decay: L2 coefficient on kernels (0: no regularizer).
    """
    if name not in MODELS:
        raise ValueError(f"build: name must be one of {', '.join(MODELS)}, received name={name!r}")
    regularizer = keras.regularizers.L2(weight_decay) if weight_decay else None
    inputs = keras.Input(input_shape)
    body = simple_cnn if name == "simple_cnn" else resnet20
    features = body(inputs, regularizer)
    outputs = layers.Dense(num_classes, kernel_regularizer=regularizer, dtype="float32",
                           name="logits")(features)
    return keras.Model(inputs, outputs, name=name)


def _conv_bn(x, filters, regularizer, strides=1, relu=True):
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False,
                      kernel_initializer="he_normal", kernel_regularizer=regularizer)(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
    return layers.ReLU()(x) if relu else x


def simple_cnn(x, regularizer):
    for filters in (32, 64, 128):
        x = _conv_bn(x, filters, regularizer)
        x = _conv_bn(x, filters, regularizer)
        x = layers.MaxPooling2D()(x)
    return layers.GlobalAveragePooling2D()(x)


def resnet20(x, regularizer, blocks_per_stage=3):
    x = _conv_bn(x, 16, regularizer)
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(blocks_per_stage):
            strides = 2 if stage > 0 and block == 0 else 1
            y = _conv_bn(x, filters, regularizer, strides=strides)
            y = _conv_bn(y, filters, regularizer, relu=False)
            if strides != 1 or x.shape[-1] != filters:
                x = ShortcutA(filters, strides)(x)
            x = layers.ReLU()(layers.Add()([x, y]))
    return layers.GlobalAveragePooling2D()(x)


@keras.saving.register_keras_serializable(package="experiments")
class ShortcutA(layers.Layer):
    """He et al.'s option A shortcut: subsample by `strides`, zero-pad channels to `filters`."""

    def __init__(self, filters, strides, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.strides = strides

    def call(self, x):
        x = x[:, :: self.strides, :: self.strides, :]
        extra = self.filters - x.shape[-1]
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]])

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        scale = lambda n: None if n is None else -(-n // self.strides)  # noqa: E731
        return (batch, scale(height), scale(width), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}
