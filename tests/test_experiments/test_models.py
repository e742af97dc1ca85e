"""experiments.runner.models and the optimizer/weight-decay wiring of experiments.runner.train."""

import keras
import numpy as np
import pytest
from run_helpers import parse

from experiments.runner import config as config_lib
from experiments.runner import models, train


def count(variables):
    return sum(int(np.prod(v.shape)) for v in variables)


def test_resnet20_has_the_papers_parameter_count():
    # 19 3x3 convolutions without bias: 3->16, 6 x 16->16, 16->32, 5 x 32->32, 32->64, 5 x 64->64
    convs = 9 * (3 * 16 + 6 * 16 * 16 + 16 * 32 + 5 * 32 * 32 + 32 * 64 + 5 * 64 * 64)
    bn_channels = 7 * 16 + 6 * 32 + 6 * 64  # one batch norm per convolution
    dense = 64 * 10 + 10
    model = models.build("resnet20", (32, 32, 3), 10)
    assert count(model.trainable_weights) == convs + 2 * bn_channels + dense == 269_722
    assert count(model.non_trainable_weights) == 2 * bn_channels  # moving mean and variance
    assert model.count_params() == 271_098  # "0.27M" (He et al. 2016, table 6)


def test_simple_cnn_parameter_count():
    convs = 9 * (3 * 32 + 32 * 32 + 32 * 64 + 64 * 64 + 64 * 128 + 128 * 128)
    bn_channels = 2 * (32 + 64 + 128)
    model = models.build("simple_cnn", (32, 32, 3), 10)
    assert count(model.trainable_weights) == convs + 2 * bn_channels + 128 * 10 + 10 == 288_746
    assert model.output_shape == (None, 10)


def test_option_a_shortcut_subsamples_and_zero_pads_channels():
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 16)).astype(np.float32)
    y = keras.ops.convert_to_numpy(models.ShortcutA(32, 2)(x))
    assert y.shape == (2, 4, 4, 32)
    np.testing.assert_array_equal(y[..., 8:24], x[:, ::2, ::2, :])
    assert not y[..., :8].any() and not y[..., 24:].any()


def test_l2_penalty_covers_conv_and_dense_kernels_only():
    model = models.build("simple_cnn", (32, 32, 3), 10, weight_decay=0.01)
    kernels = [v for v in model.trainable_weights if v.name == "kernel"]
    assert len(kernels) == 7  # 6 convolutions + classifier
    expected = 0.01 * sum(float(np.sum(np.square(keras.ops.convert_to_numpy(k)))) for k in kernels)
    assert float(sum(keras.ops.convert_to_numpy(loss) for loss in model.losses)) == pytest.approx(
        expected, rel=1e-5)


@pytest.mark.parametrize("optimizer,cls,l2_terms,decay", [
    ("sgd", keras.optimizers.SGD, 7, None),
    ("adam", keras.optimizers.Adam, 7, None),
    ("adamw", keras.optimizers.AdamW, 0, 5e-4),
])
def test_weight_decay_is_coupled_l2_for_sgd_adam_and_decoupled_for_adamw(optimizer, cls,
                                                                          l2_terms, decay):
    config = config_lib.build_config(parse(f"--optimizer={optimizer}", "--weight_decay=5e-4"),
                                     train_size=256)
    model = train.build_model(config, (32, 32, 3), 10)
    assert type(model.optimizer) is cls
    assert len(model.losses) == l2_terms
    assert model.optimizer.weight_decay == decay
    if optimizer == "sgd":
        kernel = model.trainable_weights[0]
        # L2 of wd/2 * ||w||^2: its gradient wd * w equals PyTorch's SGD weight_decay=wd.
        expected = 2.5e-4 * float(np.sum(np.square(keras.ops.convert_to_numpy(kernel))))
        assert float(keras.ops.convert_to_numpy(model.losses[0])) == pytest.approx(expected, rel=1e-5)


def test_mixed_float16_gets_loss_scaling():
    config = config_lib.build_config(parse("--precision=mixed_float16"), train_size=256)
    try:
        train.set_up(config)
        model = train.build_model(config, (32, 32, 3), 10)
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert model.layers[1].compute_dtype == "float16"
        assert model.get_layer("logits").compute_dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")
