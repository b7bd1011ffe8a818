"""``micro-app classify``: images, folders and videos -> sidecars, annotated PNGs, summary.csv,
and the slide's differential, counted as ``micro-app live`` and the window count it: every
image is a still field fed to the same ``SlideSession`` (``core.slide``), so the three give
the same counts, shares, provisional and unidentified cells for the same images.

Each input that cannot be read is one line and the others go on; inputs that all do not
exist are one line and nothing is written. Ctrl-C keeps what was done: the summary of the
inputs finished so far is written (atomically) and the command exits with 130."""

from __future__ import annotations

import argparse
import csv
import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from micro_app.cli.engine import load_engine, say
from micro_app.cli.parser import INTERRUPTED
from micro_app.core.atomic import atomic_write_bytes, atomic_write_json
from micro_app.core.engine import Engine
from micro_app.core.errors import InputError, MicroAppError
from micro_app.core.export import build_sidecar, encode_png
from micro_app.core.frame import SlidePosition
from micro_app.core.imageio import (
    expand_inputs,
    is_video,
    read_image_rgb,
    read_tiff_page,
    tiff_pages,
)
from micro_app.core.logs import FILE_ONLY
from micro_app.core.overlay import draw_overlay
from micro_app.core.results import FrameResult
from micro_app.core.slide import CountStatus, SlideSession
from micro_app.status_text import differential_lines

log = logging.getLogger("micro_app")


@dataclass
class BatchReport:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    n_cells: int = 0
    n_unlike: int = 0  # results flagged as unlike the model's training images
    notes: list[str] = field(default_factory=list)  # inputs processed only in part
    n_inputs: int = 0  # files to classify, folders expanded
    n_done: int = 0  # of those, finished (written or failed)
    interrupted: bool = False  # Ctrl-C: the summary has the inputs done so far
    slide: SlideSession = field(default_factory=SlideSession)  # the differential of them all

    @property
    def count(self) -> CountStatus:
        return self.slide.status()

    @property
    def ok(self) -> bool:
        return not self.failed


def iter_video_frames(
    path: Path, every_s: float, notes: list[str] | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Every ``every_s`` seconds' frame; a video that ends before the frame count its header
    promises is noted in ``notes`` (a cut or truncated file), not silently shortened."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise InputError(f"{path} is not a readable video: convert it to MP4 or AVI")
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        step = max(1, round(every_s * fps)) if fps > 0 and every_s > 0 else 1
        index = 0
        n_read = 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            n_read += 1
            if index % step == 0:
                yield index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
        if n_read == 0:
            raise InputError(f"{path} has no decodable frames: convert it to MP4 or AVI")
        promised = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if notes is not None and promised > 0 and n_read < promised - 1:
            notes.append(
                f"{path}: only {n_read} of the {promised} frames its header promises could be "
                "read (a cut or truncated file); the frames read were classified"
            )
    finally:
        cap.release()


def _unique_stem(stem: str, taken: set[str]) -> str:
    candidate, n = stem, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}_{n}"
    taken.add(candidate)
    return candidate


def classify_paths(
    engine: Engine,
    paths: list[Path],
    out_dir: Path,
    *,
    settings: dict[str, Any] | None = None,
    video_every_s: float = 1.0,
    on_error: Callable[[Path, str], None] | None = None,
    on_done: Callable[[Path, FrameResult], None] | None = None,
    target: int = 100,
    watch: dict[str, float] | None = None,
) -> BatchReport:
    """Classify every input; ``report.slide`` counts their cells as the live run does
    (``target`` and ``watch``: the differential's target and alerts, as in the settings)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = BatchReport(slide=SlideSession("", target, engine.threshold, watch))
    rows: list[dict[str, Any]] = []
    taken: set[str] = set()
    classes: tuple[str, ...] = engine.classifier.classes if engine.classifier else ()

    def emit(
        path: Path, stem: str, frame_index: int | None, image: np.ndarray, where: SlidePosition
    ) -> None:
        result = engine.process(image, seq=frame_index or 0, still=True)
        new: list[dict[str, Any]] = []  # into the summary once this image's files are written
        stem = _unique_stem(stem, taken)
        files = {"input": str(path), "annotated": f"{stem}_annotated.png"}
        extra = {"input": {"path": str(path), "frame_index": frame_index}}
        doc = build_sidecar(
            result,
            source={"kind": "file", "path": str(path)},
            settings=settings,
            files=files,
            extra=extra,
        )
        atomic_write_bytes(out_dir / files["annotated"], encode_png(draw_overlay(image, result)))
        report.written.append(atomic_write_json(out_dir / f"{stem}.json", doc))
        for i, cell in enumerate(result.cells):
            row: dict[str, Any] = {
                "input": str(path),
                "frame": "" if frame_index is None else frame_index,
                "cell_id": i,
                "x0": cell.box.x0,
                "y0": cell.box.y0,
                "x1": cell.box.x1,
                "y1": cell.box.y1,
                "label": cell.label,
                "predicted": cell.predicted,
                "confidence": f"{cell.confidence:.6f}",
                "unlike_training": int(cell.unlike_training),
            }
            for c in classes:
                row[f"p_{c}"] = f"{cell.probabilities.get(c, 0.0):.6f}"
            new.append(row)
        rows.extend(new)
        report.slide.add_result(result, image, where)
        report.n_cells += len(result.cells)
        report.n_unlike += result.unlike_training
        if on_done:
            on_done(path, result)

    def failed(path: Path, msg: str) -> None:
        report.failed.append((path, msg))
        log.warning("skipped %s: %s", path, msg, extra=FILE_ONLY if on_error else None)
        if on_error:
            on_error(path, msg)

    inputs = expand_inputs(paths)
    report.n_inputs = len(inputs)
    try:
        for path in inputs:
            classify_one(path, emit, failed, video_every_s, report.notes)
            report.n_done += 1
    except KeyboardInterrupt:  # Ctrl-C: the summary of the inputs done so far, below
        report.interrupted = True
    write_summary(out_dir / "summary.csv", rows, classes)
    return report


def classify_one(
    path: Path,
    emit: Callable[[Path, str, int | None, np.ndarray, SlidePosition], None],
    failed: Callable[[Path, str], None],
    video_every_s: float,
    notes: list[str],
) -> None:
    """One input: each frame of a video, each page of a TIFF, or the image. Each is a still
    field of the slide; a video's frames show one view, so a cell at the same place in
    frames close in time (``SlideSession.T_WINDOW``) is counted once."""
    try:
        if is_video(path):
            for index, image in iter_video_frames(path, video_every_s, notes):
                where = SlidePosition(str(path), still=True, t=float(index))
                emit(path, f"{path.stem}_f{index:06d}", index, image, where)
        elif (pages := tiff_pages(path)) > 1:
            for index in range(pages):  # every page of a multi-page TIFF
                where = SlidePosition(f"{path}#{index}", still=True)
                page = read_tiff_page(path, index)
                emit(path, f"{path.stem}_p{index + 1:03d}", index, page, where)
        else:
            where = SlidePosition(str(path), still=True)
            emit(path, path.stem, None, read_image_rgb(path), where)
    except (MicroAppError, OSError) as exc:
        failed(path, str(exc) if isinstance(exc, MicroAppError) else f"{path}: {exc}")
    except Exception as exc:  # one bad input never costs the others; the log has details
        log.exception("classifying %s failed", path, extra=FILE_ONLY)
        failed(path, f"{path} could not be processed ({type(exc).__name__}: {exc})"[:300])


def write_summary(path: Path, rows: list[dict[str, Any]], classes: tuple[str, ...]) -> Path:
    """summary.csv: one row per cell, written whole or not at all."""
    header = [
        "input",
        "frame",
        "cell_id",
        "x0",
        "y0",
        "x1",
        "y1",
        "label",
        "predicted",
        "confidence",
        "unlike_training",
        *[f"p_{c}" for c in classes],
    ]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_bytes(path, buf.getvalue().encode("utf-8"))


def check_inputs(paths: list[Path]) -> None:
    """Raise InputError (one line, nothing written, no model loaded) when no input exists;
    when some do, the missing ones are each one line as the run reaches them."""
    missing = [p for p in paths if not _exists(p)]
    if not missing or len(missing) < len(paths):
        return
    if len(missing) == 1:
        raise InputError(f"{missing[0]} does not exist: check the path")
    shown = ", ".join(str(p) for p in missing[:3]) + (", ..." if len(missing) > 3 else "")
    raise InputError(f"none of the {len(missing)} inputs exists ({shown}): check the paths")


def _exists(path: Path) -> bool:
    try:
        return Path(path).exists()
    except OSError:  # unreadable is not missing: the run says what is wrong with it
        return True


def cmd_classify(args: argparse.Namespace) -> int:
    check_inputs(args.paths)
    engine, settings = load_engine(args.model, args.threshold, args.um_per_px, backend=args.backend)

    def done(path: Path, result: FrameResult) -> None:
        print(image_line(path, result))
        if result.input_warning and result.field_result is not None:  # cells: in the count
            print(f"  warning: {result.input_warning}")

    report = classify_paths(
        engine,
        args.paths,
        args.out,
        settings=settings.to_dict(),
        video_every_s=args.video_every,
        on_error=lambda path, msg: say(f"skipped: {msg}"),
        on_done=done,
        target=settings.differential_target,
        watch=settings.watch,
    )
    if report.interrupted:
        say(
            f"stopped (Ctrl-C) after {report.n_done} of {report.n_inputs} inputs: "
            f"their results and summary.csv are in {args.out}"
        )
        return INTERRUPTED
    print(
        f"{len(report.written)} results, {report.n_cells} cells, "
        f"{len(report.failed)} failed -> {args.out}"
    )
    for note in report.notes:
        print(f"warning: {note}")
    clf = engine.classifier
    if clf is not None and clf.card.scope == "cell":
        for line in differential_lines(report.count, clf.classes, "micro-app adapt"):
            print(line)
    elif report.n_unlike:  # a field model: no cells counted, each field judged whole
        print(
            f"warning: {report.n_unlike} of {len(report.written)} inputs look unlike the model's "
            "training images (their JSON says which)"
        )
    return 0 if report.ok else 1


def image_line(path: Path, result: FrameResult) -> str:
    """One input's line: its cells by class, and how many of them are provisional."""
    n = len(result.cells)
    line = f"{path}: {n} cell{'s' if n != 1 else ''}"
    counts = result.counts()
    if counts:
        line += ": " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    provisional = sum(c.provisional for c in result.cells)
    return line + (f" ({provisional} provisional)" if provisional else "")
