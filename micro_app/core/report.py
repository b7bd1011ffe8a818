"""A one-page slide report as a PNG: counts, settings, model card and a few snapshots.

Rendered with OpenCV on a white A4-proportioned page (no Qt), so the CLI and the window
produce the same page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from micro_app.core.atomic import atomic_write_bytes
from micro_app.core.errors import MicroAppError
from micro_app.core.export import encode_png
from micro_app.core.imageio import read_image_rgb
from micro_app.core.overlay import class_colour
from micro_app.core.results import SHOWN
from micro_app.core.slide import SlideSession
from micro_app.core.slide_export import write_cells_csv, write_slide_json

PAGE_W, PAGE_H = 1240, 1754  # A4 at 150 dpi
FONT = cv2.FONT_HERSHEY_SIMPLEX
INK = (20, 20, 20)
GREY = (110, 110, 110)


class _Page:
    def __init__(self) -> None:
        self.img = np.full((PAGE_H, PAGE_W, 3), 255, np.uint8)
        self.y = 70

    def text(
        self,
        s: str,
        size: float = 0.7,
        colour: tuple[int, int, int] = INK,
        x: int = 70,
        bold: bool = False,
        advance: bool = True,
    ) -> None:
        cv2.putText(self.img, s, (x, self.y), FONT, size, colour, 2 if bold else 1, cv2.LINE_AA)
        if advance:
            self.y += int(38 * size) + 8

    def gap(self, px: int = 14) -> None:
        self.y += px


def _ascii(s: Any) -> str:
    return str(s).replace("µ", "u").encode("ascii", "replace").decode()


def render_report(
    session: SlideSession,
    *,
    model_card: dict[str, Any] | None,
    settings: dict[str, Any],
    snapshot_images: list[Path],
) -> np.ndarray:
    st = session.status()
    page = _Page()
    page.text(f"micro_app differential - {_ascii(session.name)}", 1.1, bold=True)
    page.text(
        f"started {session.started}   cells counted {st.total} of target {st.target}"
        + (f" ({st.n_provisional} provisional, in no percentage)" if st.n_provisional else ""),
        0.6,
        GREY,
    )
    page.gap()
    # counts table with bars
    page.text("Differential count", 0.85, bold=True)
    classes = model_card.get("classes", []) if model_card else []
    for label in sorted(st.counts, key=lambda k: -st.counts[k]):
        n, p = st.counts[label], st.provisional.get(label, 0)
        page.text(f"{_ascii(SHOWN.get(label, label)):<18}", 0.65, advance=False)
        share = st.shown_share(label)  # none for a row of provisional cells only
        shown = f"{share:5.1f} %" if share is not None else f"{'-':>5}  "
        note = f"  ({p} provisional)" if p else ""
        page.text(f"{n:>4}   {shown}{note}", 0.65, x=330, advance=False)
        x0, y0 = 520, page.y - 18
        if share:
            cv2.rectangle(
                page.img, (x0, y0), (x0 + int(6 * share), y0 + 18), class_colour(label, classes), -1
            )
        page.y += 34
    if not st.counts:
        page.text("no cells counted", 0.65, GREY)
    for w in [*st.warnings, st.provisional_line()]:
        if not w:
            continue
        page.text("WARNING  " + _ascii(w), 0.62, (200, 30, 30))
    corrections = session.corrections()
    page.text(f"{len(corrections)} cell(s) corrected in review", 0.6, GREY)
    page.gap()
    page.text("Model", 0.85, bold=True)
    if model_card:
        for key in ("name", "version", "scope", "sha256", "identity"):
            page.text(f"{key}: {_ascii(model_card.get(key))}", 0.55)
        page.text("classes: " + _ascii(", ".join(classes)), 0.55)
    else:
        page.text("no model: cells located, not classified", 0.55)
    page.gap()
    page.text("Settings", 0.85, bold=True)
    items = _flatten(settings)
    half = (len(items) + 1) // 2
    top = page.y
    for col, chunk in enumerate((items[:half], items[half:])):
        page.y = top
        for key, value in chunk:
            page.text(f"{key}: {_ascii(value)}"[:62], 0.48, GREY, x=70 + col * 560)
    page.gap()
    if snapshot_images:
        page.text("Snapshots", 0.85, bold=True)
        _paste_thumbs(page, snapshot_images[-4:])
    page.y = PAGE_H - 40
    page.text("Decision support only: a qualified person reviews every differential.", 0.5, GREY)
    return page.img


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.extend(_flatten(v, f"{prefix}{k}."))
        else:
            out.append((f"{prefix}{k}", v))
    return out


def _paste_thumbs(page: _Page, paths: list[Path]) -> None:
    w = (PAGE_W - 140 - 3 * 20) // 4
    x = 70
    for p in paths:
        try:
            img = read_image_rgb(p)
        except MicroAppError:  # a snapshot deleted meanwhile leaves a gap, not a failed report
            continue
        h = int(img.shape[0] * w / img.shape[1])
        if page.y + h > PAGE_H - 60:
            break
        page.img[page.y : page.y + h, x : x + w] = cv2.resize(
            img, (w, h), interpolation=cv2.INTER_AREA
        )
        x += w + 20
    page.y += 10


def finish_slide(
    session: SlideSession,
    folder: Path,
    *,
    model_card: dict[str, Any] | None,
    settings: dict[str, Any],
) -> dict[str, Path]:
    """Write ``<slide>_cells.csv``, ``<slide>.json`` and ``<slide>_report.png``; never overwrite."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem, n = session.name, 1
    while any((folder / f"{stem}{s}").exists() for s in ("_cells.csv", ".json", "_report.png")):
        n += 1
        stem = f"{session.name}_{n}"
    annotated = [p.with_name(p.name.replace(".json", "_annotated.png")) for p in session.snapshots]
    page = render_report(
        session,
        model_card=model_card,
        settings=settings,
        snapshot_images=[p for p in annotated if p.is_file()],
    )
    return {
        "csv": write_cells_csv(session, folder / f"{stem}_cells.csv"),
        "json": write_slide_json(session, folder / f"{stem}.json"),
        "report": atomic_write_bytes(
            folder / f"{stem}_report.png", encode_png(page), overwrite=False
        ),
    }
