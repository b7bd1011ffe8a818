"""Snapshots: the raw frame as OME-TIFF, the annotated image as PNG, and a JSON sidecar.

Every file is written atomically and a snapshot never overwrites an earlier one: the stem
gets a counter when the name is taken.
"""

from __future__ import annotations

import datetime as _dt
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from micro_app import __version__
from micro_app.core.atomic import atomic_write_bytes, atomic_write_json
from micro_app.core.results import FrameResult

SIDECAR_SCHEMA = "micro_app.sidecar/1"


@dataclass(frozen=True)
class SnapshotPaths:
    raw: Path | None
    annotated: Path
    sidecar: Path


def build_sidecar(
    result: FrameResult,
    *,
    source: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    files: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The sidecar schema shared by snapshots and ``micro-app classify``."""
    now = _dt.datetime.now(_dt.timezone.utc).astimezone()
    doc: dict[str, Any] = {
        "schema": SIDECAR_SCHEMA,
        "created": now.isoformat(timespec="seconds"),
        "app_version": __version__,
        "files": files or {},
        "source": source or {},
        "settings": settings or {},
        "calibrated_um_per_px": result.um_per_px if result.scale_source == "calibrated" else None,
    }
    doc.update(result.to_dict())
    if extra:
        doc.update(extra)
    return doc


def encode_png(image_rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError("PNG encoding failed")
    return buf.tobytes()


def encode_ome_tiff(
    image_rgb: np.ndarray, um_per_px: float | None, description: dict[str, Any]
) -> bytes:
    import tifffile

    metadata: dict[str, Any] = {"axes": "YXS", "Name": str(description.get("name", "snapshot"))}
    if um_per_px:
        metadata.update(
            PhysicalSizeX=um_per_px,
            PhysicalSizeXUnit="µm",
            PhysicalSizeY=um_per_px,
            PhysicalSizeYUnit="µm",
        )
    buf = io.BytesIO()
    tifffile.imwrite(buf, image_rgb, photometric="rgb", ome=True, metadata=metadata)
    return buf.getvalue()


def _free_stem(folder: Path, stem: str, suffixes: tuple[str, ...]) -> str:
    n = 0
    candidate = stem
    while any((folder / f"{candidate}{s}").exists() for s in suffixes):
        n += 1
        candidate = f"{stem}_{n:03d}"
    return candidate


def write_snapshot(
    folder: Path,
    image_rgb: np.ndarray,
    result: FrameResult,
    annotated_rgb: np.ndarray,
    *,
    stem: str | None = None,
    source: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    raw: bool = True,
    extra: dict[str, Any] | None = None,
) -> SnapshotPaths:
    """Write ``<stem>.ome.tif`` (raw), ``<stem>_annotated.png`` and ``<stem>.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if stem is None:
        stem = "snapshot_" + _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    suffixes = (".json", "_annotated.png") + ((".ome.tif",) if raw else ())
    calibrated = result.um_per_px if result.scale_source == "calibrated" else None
    png = encode_png(annotated_rgb)
    while True:
        free = _free_stem(folder, stem, suffixes)
        names = {"annotated": f"{free}_annotated.png"}
        if raw:
            names["raw"] = f"{free}.ome.tif"
        try:
            # images first, the sidecar last: a sidecar on disk means a complete snapshot
            raw_path = None
            if raw:
                tiff = encode_ome_tiff(image_rgb, calibrated, {"name": free})
                raw_path = atomic_write_bytes(folder / names["raw"], tiff, overwrite=False)
            annotated = atomic_write_bytes(folder / names["annotated"], png, overwrite=False)
            doc = build_sidecar(result, source=source, settings=settings, files=names, extra=extra)
            sidecar = atomic_write_json(folder / f"{free}.json", doc, overwrite=False)
        except FileExistsError:
            continue  # another writer took the stem between the check and the write
        return SnapshotPaths(raw=raw_path, annotated=annotated, sidecar=sidecar)


def tidy_snapshots(folder: Path) -> list[str]:
    """After a run that was killed mid-snapshot: remove the hidden temporary files it left,
    and move the images of a snapshot whose sidecar never got written (the sidecar is
    written last, so without it the snapshot is incomplete) to ``incomplete/``. Returns one
    line per thing done; nothing is deleted that a person could want."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    done = []
    for tmp in folder.glob(".*.tmp"):
        try:
            tmp.unlink()
            done.append(f"removed the unfinished file {tmp.name}")
        except OSError:
            continue
    for image in sorted(folder.glob("*_annotated.png")) + sorted(folder.glob("*.ome.tif")):
        stem = image.name.removesuffix("_annotated.png").removesuffix(".ome.tif")
        if (folder / f"{stem}.json").exists() or not image.exists():
            continue
        target = folder / "incomplete" / image.name
        try:
            target.parent.mkdir(exist_ok=True)
            image.replace(target)
            done.append(
                f"{image.name} has no sidecar (the run stopped while saving it): "
                "moved to incomplete/"
            )
        except OSError:
            continue
    return done
