"""Differential count: a cell in view for many frames counts once; corrections are kept."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from micro_app.core.calibration import um_per_px_from_line
from micro_app.core.errors import SettingsError
from micro_app.core.geometry import Box
from micro_app.core.report import finish_slide
from micro_app.core.results import UNIDENTIFIED, CellResult, FrameResult
from micro_app.core.slide import SlideSession
from micro_app.core.slide_export import cells_csv
from micro_app.core.tracking import CellTracker

MODEL = {"name": "test", "version": "1", "classes": ["lymphocyte", "neutrophil", "blast"]}


def cell(x: int, y: int, label: str = "lymphocyte", p: float = 0.9, size: int = 60) -> CellResult:
    other = "neutrophil" if label != "neutrophil" else "lymphocyte"
    return CellResult(
        box=Box(x, y, x + size, y + size),
        nucleus_box=Box(x + 20, y + 20, x + 40, y + 40),
        label=label,
        confidence=p,
        probabilities={label: p, other: 1 - p},
    )


def frame(seq: int, *cells: CellResult) -> FrameResult:
    return FrameResult(
        frame_seq=seq,
        timestamp=float(seq),
        image_size=(480, 640),
        cells=cells,
        um_per_px=0.12,
        scale_source="estimated",
        latency_ms=5.0,
        model=MODEL,
    )


def test_a_cell_that_stays_in_view_counts_once() -> None:
    session = SlideSession(target=100)
    for seq in range(50):  # the stage drifts 3 px per frame
        session.add_result(frame(seq, cell(100 + 3 * seq, 100), cell(400, 300, "neutrophil")))
    st = session.status()
    assert st.total == 2
    assert st.counts == {"lymphocyte": 1, "neutrophil": 1}
    assert st.percentages == {"lymphocyte": 50.0, "neutrophil": 50.0}


def test_a_flash_is_not_counted_and_a_new_cell_is() -> None:
    session = SlideSession()
    session.add_result(frame(0, cell(100, 100)))  # one frame only: not yet counted
    assert session.status().total == 0
    for seq in range(1, 5):
        session.add_result(frame(seq, cell(100, 100)))
    for seq in range(30, 35):  # much later, another cell elsewhere
        session.add_result(frame(seq, cell(400, 100)))
    assert session.status().total == 2


def test_the_label_is_a_vote_over_frames() -> None:
    session = SlideSession(threshold=0.5)
    labels = ["lymphocyte", "lymphocyte", "neutrophil", "lymphocyte", "lymphocyte"]
    for seq, lab in enumerate(labels):
        session.add_result(frame(seq, cell(100, 100, lab, 0.8)))
    (only,) = session.cells.values()
    assert only.predicted == "lymphocyte"


def test_once_a_cell_was_seen_whole_its_cut_views_do_not_vote() -> None:
    """A cell drifting in from the frame's edge: cut, it reads unsure or as another
    class; whole, it reads right. The slide counts it by its whole views."""
    from dataclasses import replace

    session = SlideSession(threshold=0.7)
    for seq in range(6):  # cut by the edge: "neutrophil" at 0.9
        cut = replace(cell(0, 100, "neutrophil", 0.9), touches_border=True)
        session.add_result(frame(seq, cut))
    for seq in range(6, 9):  # then in view, whole: lymphocyte at 0.9
        session.add_result(frame(seq, cell(10, 100, "lymphocyte", 0.9)))
    (only,) = session.cells.values()
    assert only.predicted == "lymphocyte"
    assert session.status().counts == {"lymphocyte": 1}


def test_a_cell_cut_by_the_frame_edge_is_counted_only_once_seen_whole() -> None:
    """Half a cell reads as another class or as none: the slide counts a cell cut by the
    frame's edge only once it comes into view whole, and never one only ever seen cut."""
    from dataclasses import replace

    session = SlideSession(threshold=0.7)
    for seq in range(8):  # cut for many frames: not counted, however long it stays
        cut = replace(cell(0, 100, "erythroblast", 0.9), touches_border=True)
        assert session.add_result(frame(seq, cut)) and session.status().total == 0
    session.add_result(frame(8, cell(0, 100, "lymphocyte", 0.9)))  # nucleus in, crop cut
    assert session.status().total == 0
    session.add_result(frame(9, cell(4, 100, "lymphocyte", 0.9)))  # whole: counted now
    assert session.status().counts == {"lymphocyte": 1}
    edge = SlideSession(threshold=0.7)
    for seq in range(30):  # only ever seen cut, then gone: never counted
        edge.add_result(frame(seq, replace(cell(0, 300, "neutrophil", 0.9), touches_border=True)))
    for seq in range(60, 64):  # a whole cell elsewhere later still is
        edge.add_result(frame(seq, cell(300, 300, "neutrophil", 0.9)))
    assert edge.status().counts == {"neutrophil": 1} and len(edge.cells) == 1


def test_low_confidence_track_is_unidentified() -> None:
    session = SlideSession(threshold=0.7)
    for seq in range(4):
        session.add_result(frame(seq, cell(100, 100, "lymphocyte", 0.55)))
    assert session.status().counts == {UNIDENTIFIED: 1}


def test_correction_is_kept_beside_the_prediction(tmp_path: Path) -> None:
    session = SlideSession(name="s1")
    image = np.full((480, 640, 3), 200, np.uint8)
    for seq in range(4):
        session.add_result(frame(seq, cell(100, 100)), image)
    (cid,) = session.cells
    session.correct(cid, "monocyte")
    assert session.status().counts == {"monocyte": 1}
    assert session.corrections() == {cid: {"predicted": "lymphocyte", "corrected": "monocyte"}}
    paths = finish_slide(session, tmp_path, model_card=None, settings={"a": 1})
    rows = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    assert rows[0]["predicted"] == "lymphocyte" and rows[0]["corrected"] == "monocyte"
    assert rows[0]["label"] == "monocyte"
    doc = json.loads(paths["json"].read_text())
    assert doc["corrections"] == {str(cid): {"predicted": "lymphocyte", "corrected": "monocyte"}}
    page = cv2.imread(str(paths["report"]))
    assert page is not None and page.shape[0] > page.shape[1]  # portrait page
    again = finish_slide(session, tmp_path, model_card=None, settings={})
    assert again["csv"] != paths["csv"]  # never overwrites the first report
    session.correct(cid, "lymphocyte")  # back to the prediction: no correction left
    assert session.corrections() == {}
    with pytest.raises(KeyError):
        session.correct(999, "monocyte")


def test_watched_class_above_its_share_warns() -> None:
    session = SlideSession(watch={"blast": 0.2})
    for seq in range(4):
        session.add_result(frame(seq, cell(100, 100, "blast"), cell(400, 100), cell(400, 300)))
    st = session.status()
    assert st.total == 3 and "1 blast in 3 cells: refer for review" in st.warnings


def test_blasts_a_lab_taught_are_counted_and_referred_by_default() -> None:
    session = SlideSession()  # the default watch list: blast above 1 %
    for seq in range(4):
        session.add_result(
            frame(seq, cell(50, 50, "blast"), cell(250, 50, "blast"), cell(450, 50), cell(50, 250))
        )
    st = session.status()
    assert st.counts["blast"] == 2 and st.percentages["blast"] == 50.0
    assert "2 blasts in 4 cells: refer for review" in st.warnings
    assert "blast" in cells_csv(session).splitlines()[1]


def test_tracker_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="min_hits=0"):
        CellTracker(min_hits=0)


def test_calibration_from_a_stage_micrometer_line() -> None:
    assert um_per_px_from_line((0, 0), (400, 0), 100.0) == pytest.approx(0.25)
    with pytest.raises(SettingsError, match="positive"):
        um_per_px_from_line((0, 0), (400, 0), 0)
    with pytest.raises(SettingsError, match="longer"):
        um_per_px_from_line((0, 0), (3, 4), 10)


def test_cells_are_counted_only_once_the_model_has_classified_them() -> None:
    session = SlideSession(target=100)
    unclassified = CellResult(
        Box(100, 100, 160, 160), Box(120, 120, 140, 140), "unclassified", 0.0, {}
    )
    for seq in range(6):  # the model is still loading: cells are located, not classified
        r = frame(seq, unclassified)
        session.add_result(FrameResult(**{**r.__dict__, "model": None}))
    assert session.status().total == 0
    for seq in range(6, 12):
        session.add_result(frame(seq, cell(100, 100)))
    assert session.status().counts == {"lymphocyte": 1}


def test_a_looping_source_counts_each_slide_position_once() -> None:
    """A folder replayed three times: each of its two fields has one cell; two cells."""
    from micro_app.core.frame import SlidePosition

    session = SlideSession(target=100)
    seq = 0
    for _ in range(3):  # three passes over the folder
        for key, x in (("a.jpg", 100), ("b.jpg", 300)):
            for _ in range(15):  # shown long enough to be tracked and counted, then gone
                session.add_result(frame(seq, cell(x, 100)), position=SlidePosition(key))
                seq += 1
    assert session.status().total == 2
    # a folder of still fields replayed at full speed: each shown one frame per pass
    still = SlideSession(target=100)
    for seq in range(30):
        key, x = (("a.jpg", 100), ("b.jpg", 300), ("c.jpg", 500))[seq % 3]
        ids = still.add_result(frame(seq, cell(x, 100)), position=SlidePosition(key, still=True))
        assert ids == [[1, 2, 3][seq % 3]]  # the same cell gets the same id every pass
    assert still.status().total == 3
    # the demo stage wraps around: a cell seen again after a full turn is the same cell
    demo = SlideSession(target=100)
    wrap = (1000, 800)
    for turn in range(2):
        for k in range(12):
            pos = SlidePosition("demo", 900.0 + 20 * k + 1000 * turn, 0.0, wrap)
            demo.add_result(frame(100 * turn + k, cell(300 - 20 * k, 100)), position=pos)
    assert demo.status().total == 1


def test_cells_unlike_the_training_images_are_counted_as_provisional() -> None:
    from dataclasses import replace

    session = SlideSession(target=100)
    for seq in range(6):
        odd = replace(cell(100, 100), unlike_training=True)
        session.add_result(frame(seq, odd, cell(400, 300, "neutrophil")))
    st = session.status()
    assert st.total == 2 and st.provisional == {"lymphocyte": 1}
    line = st.provisional_line()
    assert line is not None and "1 of 2 cells are provisional" in line
    assert "menu" not in line.lower()  # the core names no menu: the caller says where
    assert "this microscope (Model menu) and" in (st.provisional_line("Model menu") or "")
    # a reviewer's class is a person's call, not provisional any more
    cid = next(c.cell_id for c in session.cells.values() if c.label == "lymphocyte")
    session.correct(cid, "neutrophil")
    assert session.status().provisional == {}


def test_a_cell_flagged_atypical_in_most_frames_is_counted_atypical_and_watched() -> None:
    from dataclasses import replace

    from micro_app.core.results import ATYPICAL

    session = SlideSession(target=100)
    for seq in range(6):
        odd = replace(cell(100, 100), label=ATYPICAL, atypical=True)
        session.add_result(frame(seq, odd, cell(400, 300, "neutrophil")))
    st = session.status()
    assert st.counts == {ATYPICAL: 1, "neutrophil": 1}
    assert any(w.startswith("atypical: 50.0%") for w in st.warnings)
    assert "atypical" in cells_csv(session)
