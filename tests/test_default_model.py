"""The shipped default model: found with no setup, credited, small, and scored honestly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from micro_app.cli import main
from micro_app.core.models import default_model_dir, load_package

pytestmark = [pytest.mark.slow]
REPO = Path(__file__).resolve().parents[1]


def test_default_model_is_found_verified_and_credits_pbc() -> None:
    folder = default_model_dir()
    assert folder == REPO / "models" / "lite0_pbc_bccd"
    pkg = load_package(folder)  # checks sha256, classes and input shape; safe_mode
    card = pkg.card
    assert card.classes == (
        "basophil",
        "eosinophil",
        "erythroblast",
        "ig",
        "lymphocyte",
        "monocyte",
        "neutrophil",
        "platelet",
    )
    assert card.training_data["licence"] == "CC BY 4.0"
    assert "Data in Brief 30:105474" in card.training_data["citation"]
    assert card.crop.size_um == 37.4 and card.architecture == "efficientnet_lite0"
    # ImageNet weights and the BCCD training half are credited with their licences
    assert card.extra["imagenet_weights"]["licence"] == "Apache-2.0"
    also = card.training_data["also_trained_on"]
    assert also["licence"].startswith("MIT") and len(also["files"]) == also["images"]
    assert card.appearance is not None and card.unidentified_threshold is not None
    assert card.metrics["test"]["macro_f1"] >= 0.95
    assert {"keras", "onnx", "onnx_int8"} <= set(card.weights)
    from micro_app.core.models.int8 import usable

    assert usable(card)  # the 8-bit live model was made from these FP32 weights and passed
    weights = sum((folder / w.file).stat().st_size for w in card.weights.values())
    assert weights < 35_000_000, "weights stay small (Keras 14 MB, ONNX 13.5 MB, 8-bit 3.8 MB)"
    # the package also carries its split (2.1 MB) and 335 replay crops for teaching (2.7 MB):
    # 32 per class of PBC's training split, and up to 32 per class of BCCD's training half
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size < 40_000_000, "the default package stays small"
    assert card.extra["replay"]["cells"] == 256 + 79
    # the unlike check has one source per training set (section I of docs/models.md)
    # (BCCD: fitted on two thirds of its 116 cells, the threshold from the other third)
    assert [s["n_images"] for s in card.appearance["sources"]] == [4800, 77]


def test_classify_uses_the_default_model_when_none_is_chosen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bccd_dir: Path
) -> None:
    monkeypatch.setenv("MICRO_APP_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MICRO_APP_LOG_DIR", str(tmp_path / "logs"))
    # a field of BCCD's test half (the model trained on the other half, never on this one)
    image = bccd_dir / "images" / "BloodImage_00001.jpg"
    assert main(["classify", str(image), "--out", str(tmp_path / "out")]) == 0
    doc = json.loads((tmp_path / "out" / "BloodImage_00001.json").read_text())
    assert doc["model"]["name"] == "lite0-pbc-bccd"
    assert doc["cells"] and all(c["label"] != "unclassified" for c in doc["cells"])
    # another lab's stain and camera, but one the model was trained on (BCCD's other half):
    # like one of its training sources, so the cells are not provisional
    assert doc["input_check"]["unlike_training"] is False
    assert not any(c.get("provisional") for c in doc["cells"])
    # a camera it has never seen (ARIA, another hospital): the sidecar says so
    aria = bccd_dir.parent / "aria_all" / "benign"
    if aria.is_dir():
        fields = sorted(aria.iterdir())[:6]  # one of them holds no locatable white cell
        assert main(["classify", *map(str, fields), "--out", str(tmp_path / "aria")]) == 0
        docs = [json.loads((tmp_path / "aria" / f"{f.stem}.json").read_text()) for f in fields]
        found = [d for d in docs if d["cells"]]
        assert found and all(d["input_check"]["unlike_training"] is True for d in found)
        assert "unlike the model's training images" in found[0]["input_check"]["warning"]


def test_evaluate_json_on_a_folder_laid_out_like_pbc(
    pbc_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder of class folders holding only test-split images (never trained on)."""
    folder = default_model_dir()
    assert folder is not None
    split = json.loads((folder / "split.json").read_text())["images"]
    data = tmp_path / "cells"
    taken: dict[str, int] = {}
    for e in split:
        label = e["path"].split("/")[0]
        if e["split"] != "test" or taken.get(label, 0) >= 10:
            continue
        (data / label).mkdir(parents=True, exist_ok=True)
        shutil.copy(pbc_dir / e["path"], data / label / Path(e["path"]).name)
        taken[label] = taken.get(label, 0) + 1
    capsys.readouterr()
    assert main(["evaluate", str(folder), str(data), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_images"] == 80
    for key in ("accuracy", "macro_f1", "per_class", "confusion_matrix", "ece"):
        assert key in report
    # measured 0.977 on all 1,600 test crops; 80 crops leave room for chance
    assert report["accuracy"] >= 0.85
