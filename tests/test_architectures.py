"""Every architecture builder: output shape, a few training steps, and a save/load round
trip through the model package; argument checks and the ImageNet cache rule."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from micro_app.training.architectures import (
    NAMES,
    REGISTRY,
    ArchitectureError,
    architecture,
    build_model,
    feature_extractor,
)

# The smallest input each builder allows, to keep the big transfer models quick on a CPU.
SMALL = {
    "alexnet": 67,
    "inception_v3": 75,
    "inception_resnet_v2": 75,
    "inception_v3_resnet101": 75,
    "drnn": 16,
}
FEATURES = {"alexnet": 4096, "inception_v3_resnet101": 4096}


def _card(name: str, size: int, n_classes: int):  # type: ignore[no-untyped-def]
    from micro_app.core.models import ModelCard

    arch = architecture(name)
    return ModelCard(
        name=f"test-{name}",
        version="0",
        classes=tuple(f"c{i}" for i in range(n_classes)),
        input_size=(size, size),
        preprocessing=arch.preprocessing,
        colour_order=arch.colour_order,
        architecture=name,
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_builder_trains_and_round_trips_through_a_package(name: str, tmp_path: Path) -> None:
    import keras

    from micro_app.core.models import load_package, save_package
    from micro_app.core.models.classifier import Classifier

    size = SMALL.get(name, 32)
    n_classes = 3
    model = build_model(name, n_classes, size)
    assert model.input_shape == (None, size, size, 3)
    assert model.output_shape == (None, n_classes)
    feats = feature_extractor(model)
    assert len(feats.output_shape) == 2
    if name in FEATURES:
        assert feats.output_shape[-1] == FEATURES[name]
    rng = np.random.default_rng(0)
    x = rng.random((4, size, size, 3)).astype(np.float32)
    y = np.array([0, 1, 2, 0])
    # eager steps: tracing a 300-800 layer graph costs more than two steps on a CPU
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy", run_eagerly=True)
    before = [w.copy() for w in model.get_weights()]
    hist = model.fit(x, y, batch_size=2, epochs=1, verbose=0)  # two training steps
    assert np.isfinite(hist.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))

    card = _card(name, size, n_classes)
    folder = save_package(model, card, tmp_path / name)
    pkg = load_package(folder)
    images = rng.integers(0, 256, (2, size, size, 3), dtype=np.uint8)
    from micro_app.core.models.classifier import prepare_batch

    x_in = prepare_batch(images, card)
    expected = np.asarray(model(x_in, training=False))
    np.testing.assert_allclose(np.asarray(pkg.model(x_in, training=False)), expected, atol=1e-5)
    if name in ("live_cnn", "basic_cnn", "drnn"):  # the app's compiled inference path
        np.testing.assert_allclose(Classifier(pkg).predict(images), expected, atol=1e-5)


def test_basic_cnn_uses_one_sigmoid_unit_for_two_classes() -> None:
    model = build_model("basic_cnn", 2, 32)
    assert model.output_shape == (None, 1)
    assert model.get_layer("predictions").activation.__name__ == "sigmoid"
    assert build_model("basic_cnn", 4, 32).output_shape == (None, 4)


def test_drnn_reads_image_rows_as_a_sequence_on_median_hsv_input() -> None:
    arch = architecture("drnn")
    assert arch.preprocessing.median and arch.preprocessing.hsv
    model = build_model("drnn", 3, (20, 24), layers=3, units=16, cell="gru")
    assert model.get_layer("rows_as_sequence").output.shape[1:] == (20, 24 * 3)
    assert sum(type(layer).__name__ == "GRU" for layer in model.layers) == 3


@pytest.mark.parametrize(
    ("name", "kwargs", "quoted"),
    [
        ("basic_cnn", {"num_classes": 1}, "1"),
        ("snet", {"num_classes": 3, "input_size": (224, "x")}, "'x'"),
        ("alexnet", {"num_classes": 3, "input_size": 32}, "32"),
        ("drnn", {"num_classes": 3, "cell": "rnn"}, "'rnn'"),
        ("live_cnn", {"num_classes": 3, "width": 9}, "9"),
        ("small_cnn", {"num_classes": 3, "weights": "imagenet"}, "'imagenet'"),
        ("vgg16", {"num_classes": 3, "weights": "places365"}, "'places365'"),
        ("mobilenet_v2", {"num_classes": 3, "alpha": 0.9}, "0.9"),
        ("resnet50", {"num_classes": 3, "alpha": 0.5}, "alpha=0.5"),  # another row's option
    ],
)
def test_bad_arguments_are_refused_up_front_quoting_the_value(
    name: str, kwargs: dict[str, object], quoted: str
) -> None:
    with pytest.raises(ArchitectureError, match=name) as err:
        build_model(name, **kwargs)  # type: ignore[arg-type]
    assert quoted in str(err.value)


def test_every_name_is_one_row_of_the_registry() -> None:
    """Saved cards name their architecture: every name keeps exactly one builder."""
    assert sorted(REGISTRY) == sorted(NAMES)
    assert all(architecture(name).name == name for name in NAMES)


def test_unknown_architecture_lists_the_choices() -> None:
    with pytest.raises(ArchitectureError, match="choose one of basic_cnn"):
        build_model("lenet", 3)


def test_imagenet_weights_missing_from_the_cache_give_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(ArchitectureError) as err:
        build_model("resnet50", 3, 32, weights="imagenet")
    msg = str(err.value)
    assert "\n" not in msg and "not in the local Keras cache" in msg
    assert str(tmp_path / "models" / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5") in msg
    for name in NAMES:  # architectures without Keras weights say so
        if architecture(name).imagenet_file is None:
            with pytest.raises(ArchitectureError, match="no pretrained weights"):
                build_model(name, 3, weights="imagenet")


@pytest.mark.slow
def test_imagenet_weights_are_read_from_the_local_cache_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cached file (here: a stand-in written by this test) is loaded, and the in-model
    caffe preprocessing equals Keras' own ``preprocess_input``."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    src = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    cache = tmp_path / "models"
    cache.mkdir()
    with h5py.File(cache / architecture("vgg16").imagenet_file, "w") as fh:  # type: ignore[operator]
        legacy_h5_format.save_weights_to_hdf5_group(fh, src)
    model = build_model("vgg16", 3, 32, weights="imagenet")
    np.testing.assert_array_equal(
        model.get_layer("block5_conv3").get_weights()[0],
        src.get_layer("block5_conv3").get_weights()[0],
    )
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32) * 255
    ours = keras.Model(model.inputs[0], model.get_layer("block5_pool").output)(x)
    ref = src(keras.applications.vgg16.preprocess_input(x.copy()))
    np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), rtol=1e-4, atol=1e-3)
    assert os.listdir(cache) == [architecture("vgg16").imagenet_file]  # nothing downloaded
