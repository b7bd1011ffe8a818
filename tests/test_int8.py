"""The 8-bit live model: written into every package beside FP32, checked against FP32 when
written and again when loaded, run by ``auto`` on a CPU, and never used when it is stale or
disagrees."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from micro_app.core.errors import ModelPackageError
from micro_app.core.models import load_package
from micro_app.core.models.classifier import Classifier
from micro_app.core.models.int8 import (
    INT8,
    MIN_AGREEMENT,
    check_indices,
    recheck,
    split_cells,
    usable,
)
from micro_app.core.models.runtime import resolve

pytestmark = pytest.mark.slow


def _colour_cells(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cells of the colour model's three classes: one channel clearly dominant."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    cells = rng.integers(0, 120, (n, 32, 32, 3)).astype(np.uint8)
    for i, k in enumerate(labels):
        cells[i, ..., k] = rng.integers(150, 256, (32, 32))
    return cells, labels


@pytest.fixture(scope="module")
def colour_package(tiny_package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The colour model with a replay sample of its cells and FP32 ONNX weights."""
    from micro_app.core.atomic import atomic_write_json
    from micro_app.core.models.card import CARD_FILE
    from micro_app.core.models.replay import REPLAY_FILE, ReplaySet, replay_entry
    from micro_app.training.export import export

    folder = tmp_path_factory.mktemp("int8") / "colour"
    shutil.copytree(tiny_package, folder)
    cells, labels = _colour_cells(160)
    card = json.loads((folder / CARD_FILE).read_text())
    replay = ReplaySet(cells, labels, tuple(card["classes"]))
    path = replay.save(folder / REPLAY_FILE)
    card["extra"] = {**card.get("extra", {}), "replay": replay_entry(replay, path, "test cells")}
    atomic_write_json(folder / CARD_FILE, card)
    export(folder, "onnx")
    return folder


@pytest.fixture
def quantized(colour_package: Path, tmp_path: Path) -> Path:
    """A copy of the colour package with its 8-bit model added."""
    from micro_app.training.quantize import quantize_package

    folder = tmp_path / "pkg"
    shutil.copytree(colour_package, folder)
    quantize_package(folder)
    return folder


def test_a_package_gets_an_8bit_model_checked_on_cells_it_was_not_calibrated_on(
    colour_package: Path, tmp_path: Path
) -> None:
    from micro_app.training.quantize import quantize_package

    folder = tmp_path / "pkg"
    shutil.copytree(colour_package, folder)
    r = quantize_package(folder)
    pkg = load_package(folder, keras=False)
    entry = pkg.card.extra["int8"]
    assert INT8 in pkg.card.weights and r["top1_agreement"] >= MIN_AGREEMENT
    assert entry["from_onnx_sha256"] == pkg.card.weights["onnx"].sha256
    calibrated, checked = split_cells(160)
    assert entry["check"]["replay_indices"] == checked.tolist()
    assert not set(calibrated) & set(checked)  # checked on cells it was not calibrated on
    assert entry["checked_on"] == "40 of the package's replay cells not used to calibrate"
    # on a CPU, auto runs it, says so, and classifies the cells as FP32 does
    assert usable(pkg.card) and resolve(pkg.card) == INT8
    live = Classifier(pkg)
    assert live.backend == INT8 and live.device == "CPU (onnxruntime, 8-bit)"
    fp32 = Classifier(pkg, backend="onnx")
    cells, labels = _colour_cells(90, seed=7)
    assert np.array_equal(live.predict(cells).argmax(1), fp32.predict(cells).argmax(1))
    assert np.array_equal(live.predict(cells).argmax(1), labels)


def test_an_8bit_model_that_disagrees_at_load_gives_way_to_fp32_in_one_line(
    quantized: Path,
) -> None:
    from micro_app.core.atomic import atomic_write_json

    folder = quantized
    card = json.loads((folder / "card.json").read_text())
    probs = np.asarray(card["extra"]["int8"]["check"]["fp32_probabilities"])
    # what another computer would see if its int8 kernels rounded differently
    card["extra"]["int8"]["check"]["fp32_probabilities"] = np.roll(probs, 1, axis=1).tolist()
    atomic_write_json(folder / "card.json", card)
    said: list[str] = []
    clf = Classifier(load_package(folder, keras=False), on_message=said.append)
    assert clf.backend == "onnx"
    assert len(said) == 1 and "agrees with FP32 on only 0%" in said[0]
    assert said[0].endswith("running FP32") and "\n" not in said[0]
    said.clear()  # chosen by name: kept, with the warning
    chosen = Classifier(load_package(folder, keras=False), INT8, on_message=said.append)
    assert chosen.backend == INT8 and "choose the onnx backend" in said[0]


def test_new_fp32_weights_retire_the_old_8bit_model(quantized: Path) -> None:
    from micro_app.core.models.card import ModelCard

    card = load_package(quantized, keras=False).card
    assert usable(card) and resolve(card) == INT8
    stale = card.to_dict()
    stale["weights"]["onnx"]["sha256"] = "0" * 64  # FP32 weights it was not made from
    assert not usable(ModelCard.from_dict(stale))
    assert resolve(ModelCard.from_dict(stale)) == "onnx"


def test_a_package_without_cells_of_its_own_gets_no_8bit_model_and_says_so(
    tiny_package: Path, tmp_path: Path
) -> None:
    from micro_app.training.export import export_beside_keras
    from micro_app.training.quantize import quantize_package

    folder = tmp_path / "pkg"
    shutil.copytree(tiny_package, folder)
    said: list[str] = []
    export_beside_keras(folder, said.append)
    assert len(said) == 2 and said[1].startswith("no 8-bit model for pkg: no cells of its own")
    card = load_package(folder, keras=False).card
    assert INT8 not in card.weights and resolve(card) == "onnx"
    with pytest.raises(ModelPackageError, match="no cells of its own"):
        quantize_package(folder)


def test_the_load_check_compares_the_recorded_fp32_answers() -> None:
    class Card:
        def __init__(self) -> None:
            check = {"replay_indices": [0, 2], "fp32_probabilities": [[0.9, 0.1], [0.2, 0.8]]}
            self.extra = {"int8": {"check": check}}

    assert check_indices(Card()).tolist() == [0, 2]
    cells = np.zeros((2, 4, 4, 3), np.uint8)  # the replay cells at those indices
    same = recheck(Card(), cells, lambda x: np.array([[0.7, 0.3], [0.4, 0.6]]))
    assert same is None
    flipped = recheck(Card(), cells, lambda x: np.array([[0.3, 0.7], [0.4, 0.6]]))
    assert flipped is not None and "50% of its 2 check cells" in flipped
    assert recheck(Card(), None, lambda x: x) is None  # no replay: nothing to repeat
    assert "do not match" in (recheck(Card(), cells[:1], lambda x: x) or "")


def test_the_load_check_decodes_only_its_cells_and_in_their_order(colour_package: Path) -> None:
    from micro_app.core.models.replay import load_replay

    card = load_package(colour_package, keras=False).card
    whole = load_replay(colour_package, card)
    some = load_replay(colour_package, card, keep=np.array([5, 1]))
    assert whole is not None and some is not None
    assert np.array_equal(some.images, whole.images[[5, 1]])
    assert some.labels.tolist() == whole.labels[[5, 1]].tolist()
    with pytest.raises(ModelPackageError, match="has no cell 999"):
        load_replay(colour_package, card, keep=np.array([999]))


def test_every_command_offers_the_backends_the_app_knows() -> None:
    import argparse

    from micro_app.cli import build_parser
    from micro_app.core.models.runtime import BACKENDS

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in ("live", "classify", "bench"):
        backend = next(a for a in sub.choices[name]._actions if a.dest == "backend")
        assert tuple(backend.choices or ()) == BACKENDS


def test_a_tampered_8bit_file_gives_way_to_fp32_under_auto_and_is_refused_by_name(
    quantized: Path,
) -> None:
    folder = quantized
    (folder / "model_int8.onnx").write_bytes(b"tampered")
    said: list[str] = []
    clf = Classifier(load_package(folder, keras=False), on_message=said.append)
    assert clf.backend == "onnx"
    assert len(said) == 1 and "the 8-bit model cannot run" in said[0]
    assert said[0].endswith("running FP32")
    with pytest.raises(ModelPackageError, match="do not match the card"):
        Classifier(load_package(folder, keras=False), INT8)
