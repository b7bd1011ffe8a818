"""The micro-app command: help without TensorFlow, classify, cameras, the live pipeline."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import demo_fields

from micro_app.cli import main
from micro_app.core.sources import DemoSource


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICRO_APP_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MICRO_APP_LOG_DIR", str(tmp_path / "logs"))


def test_help_does_not_load_tensorflow() -> None:
    code = (
        "import sys\nfrom micro_app.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "print('TF' if 'tensorflow' in sys.modules or 'keras' in sys.modules else 'NO-TF')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "classify" in out.stdout and out.stdout.strip().endswith("NO-TF")


@pytest.mark.slow
def test_classify_writes_results_and_skips_bad_inputs(
    tiny_package: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = demo_fields(tmp_path / "in", 2)
    broken = tmp_path / "in" / "broken.png"
    broken.write_bytes(b"not a png")
    out = tmp_path / "out"
    rc = main(
        [
            "classify",
            str(tmp_path / "in"),
            str(tmp_path / "missing.jpg"),
            "--model",
            str(tiny_package),
            "--out",
            str(out),
        ]
    )
    assert rc == 1  # two inputs failed, the rest were processed
    err = capsys.readouterr().err
    assert "broken.png" in err and "missing.jpg" in err
    n_cells = 0
    for path in good:
        doc = json.loads((out / f"{path.stem}.json").read_text())
        assert doc["model"]["name"] == "tiny-colour" and doc["input"]["path"] == str(path)
        assert doc["cells"], "the demo field has white cells"
        n_cells += len(doc["cells"])
        annotated = cv2.imread(str(out / f"{path.stem}_annotated.png"))
        assert annotated is not None and annotated.shape == (480, 640, 3)
    with open(out / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == n_cells
    assert {"p_red_cell", "p_green_cell", "p_blue_cell", "label", "x0"} <= set(rows[0])
    assert not (out / "broken.json").exists()


@pytest.mark.slow
def test_classify_a_video_samples_frames(tiny_package: Path, tmp_path: Path) -> None:
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 4.0, (640, 480))
    src = DemoSource(seed=2)
    src.open()
    for _ in range(8):
        frame = src.read()
        assert frame is not None
        writer.write(cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
    writer.release()
    src.close()
    out = tmp_path / "out"
    assert (
        main(
            [
                "classify",
                str(video),
                "--model",
                str(tiny_package),
                "--out",
                str(out),
                "--video-every",
                "1",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.glob("*.json")) == ["clip_f000000.json", "clip_f000004.json"]


@pytest.mark.slow
@pytest.mark.realdata
def test_classify_boxes_the_white_cells_of_real_fields(
    tiny_package: Path, bccd_dir: Path, tmp_path: Path
) -> None:
    from micro_app.core.detection_eval import parse_voc

    names = ["BloodImage_00030", "BloodImage_00049", "BloodImage_00217"]
    paths = [bccd_dir / "images" / f"{n}.jpg" for n in names]
    out = tmp_path / "out"
    assert (
        main(["classify", *map(str, paths), "--model", str(tiny_package), "--out", str(out)]) == 0
    )
    for name in names:
        doc = json.loads((out / f"{name}.json").read_text())
        truth = parse_voc(bccd_dir / "annotations" / f"{name}.xml").boxes("WBC")
        centres = [
            ((c["box"][0] + c["box"][2]) / 2, (c["box"][1] + c["box"][3]) / 2) for c in doc["cells"]
        ]
        for gt in truth:
            assert any(gt.contains(x, y) for x, y in centres), f"{name}: WBC {gt} not boxed"


def test_cameras_lists_without_crashing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cameras"]) == 0
    assert capsys.readouterr().out.strip()


@pytest.mark.slow
def test_live_pipeline_runs_and_snapshots(tiny_package: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    from micro_app.cli.live import live_source, run_live
    from micro_app.core.engine import Engine
    from micro_app.core.models import load_package

    engine = Engine(load_package(tiny_package))
    rc = run_live(
        engine,
        live_source("demo"),
        seconds=3.5,
        out=tmp_path / "snaps",
        snapshot_every=1.0,
        print_fn=lines.append,
    )
    assert rc == 0
    assert any("inference" in line and "fps" in line for line in lines)
    # the slide's differential at the end: every class of the model, counted or not
    at = next(i for i, line in enumerate(lines) if line.startswith("differential:"))
    assert [line.split()[0] for line in lines[at + 1 : at + 4]] == [
        "red_cell",
        "green_cell",
        "blue_cell",
    ]
    sidecars = sorted((tmp_path / "snaps").glob("*.json"))
    assert sidecars
    doc = json.loads(sidecars[0].read_text())
    assert doc["source"]["kind"] == "demo" and doc["model"]["name"] == "tiny-colour"
    assert (tmp_path / "snaps" / doc["files"]["raw"]).is_file()


def test_bad_model_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = demo_fields(tmp_path / "in", 1)[0]
    rc = main(
        ["classify", str(img), "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]
    )
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"micro-app: model folder {tmp_path / 'nope'} does not exist: check the path"]
    np.testing.assert_equal((tmp_path / "o").exists(), False)


@pytest.mark.slow
def test_bench_reports_speed_and_memory(
    tiny_package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "--model", str(tiny_package), "--frames", "5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"]["name"] == "tiny-colour"
    assert report["pipeline"]["frames"] == 5 and report["pipeline"]["cells"] >= 5
    assert report["pipeline"]["cells_per_s"] > 0 and report["peak_rss_mb"] > 0
    assert set(report["model_crops_per_s"]) == {"batch_1", "batch_8", "batch_32"}
