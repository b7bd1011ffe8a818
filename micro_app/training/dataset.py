"""A training dataset: a folder of class folders, read once, hashed and grouped.

Every image is read once: its sha256 (exact copies), a 128-bit difference hash of the
grey image (near copies: re-encoded, slightly resized or recompressed files) and the
image resized to the model input. Images whose hashes are within ``NEAR_DUPLICATE_BITS``
bits are put in one group, so a split never separates them. Measured on the 8,000 PBC
crops: a re-encoded (JPEG quality 60) and 6 % smaller copy differs by at most 7 bits;
distinct cells by more than 10 bits, except 1 pair.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from micro_app.core.errors import InputError
from micro_app.core.imageio import list_images, read_image_rgb
from micro_app.core.models.gradcam import resize_to_input

NEAR_DUPLICATE_BITS = 10
DATASET_INFO_FILE = "dataset.json"
# Known public datasets, recognised by folder name, for the model card.
KNOWN_DATASETS: dict[str, dict[str, str]] = {
    "pbc": {
        "name": "PBC (peripheral blood cells, CellaVision DM96, healthy donors)",
        "licence": "CC BY 4.0",
        "citation": "Acevedo A. et al. (2020), A dataset of microscopic peripheral blood cell "
        "images for development of automatic recognition systems, Data in Brief 30:105474; "
        "Mendeley Data snkd93bnjr v1",
    },
}

# Side of a known dataset's crops in micrometres, so the app frames live cells the same way.
# PBC: 256-pixel crops at 0.146 µm/px, the median red-cell scale (``estimate_um_per_px``)
# of 153 of 200 sampled crops (10th-90th percentile 0.132-0.160).
KNOWN_CROP_UM: dict[str, float] = {"pbc": 37.4}


@dataclass(frozen=True)
class Sample:
    path: str  # relative to the dataset root, with forward slashes
    label: str
    sha256: str
    dhash: str  # 32 hex digits


def list_dataset(root: Path, classes: list[str] | None = None) -> list[tuple[str, str]]:
    """``(relative path, class)`` of every image in the class folders of ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"dataset folder {root} does not exist: check the path")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    names = [p.name for p in folders]
    if classes:
        unknown = [c for c in classes if c not in names]
        if unknown:
            raise InputError(f"classes {unknown} have no folder in {root}; it has {names}")
        folders = [p for p in folders if p.name in classes]
    items = [(f"{d.name}/{f.name}", d.name) for d in folders for f in list_images(d)]
    found = sorted({label for _, label in items})
    if len(found) < 2:
        raise InputError(
            f"{root} needs at least two class folders with images, found {found}: "
            "arrange the images as DATASET/<class>/<image>"
        )
    return items


def subsample(
    items: list[tuple[str, str]], per_class: int | None, seed: int
) -> list[tuple[str, str]]:
    """At most ``per_class`` images of each class, drawn with ``seed``, in listing order."""
    if per_class is None:
        return items
    rng = np.random.default_rng(seed)
    keep: set[int] = set()
    for label in sorted({lab for _, lab in items}):
        idx = [i for i, (_, lab) in enumerate(items) if lab == label]
        keep.update(int(i) for i in rng.permutation(idx)[:per_class])
    return [it for i, it in enumerate(items) if i in keep]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dhash128(image_rgb: np.ndarray) -> str:
    """Horizontal and vertical difference hash of the grey image, 128 bits as hex."""
    grey = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)
    a = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA)
    b = cv2.resize(grey, (8, 9), interpolation=cv2.INTER_AREA)
    bits = np.concatenate([(a[:, 1:] > a[:, :-1]).ravel(), (b[1:, :] > b[:-1, :]).ravel()])
    return np.packbits(bits).tobytes().hex()


def read_samples(
    root: Path,
    items: list[tuple[str, str]],
    input_size: tuple[int, int] | None,
    workers: int = 2,
) -> tuple[list[Sample], np.ndarray | None]:
    """Hash every image and (with ``input_size``) return them resized, uint8 ``(N, h, w, 3)``."""
    samples, out, _ = read_samples_with_sources(root, items, input_size, workers)
    return samples, out


def read_samples_with_sources(
    root: Path,
    items: list[tuple[str, str]],
    input_size: tuple[int, int] | None,
    workers: int = 2,
    source_size: tuple[int, int] | None = None,
) -> tuple[list[Sample], np.ndarray | None, np.ndarray | None]:
    """``read_samples`` that also returns every image at ``source_size`` (for training with
    the simulated camera, which works on the crop before it is reduced to the input)."""
    root = Path(root)
    out = np.empty((len(items), *input_size, 3), np.uint8) if input_size is not None else None
    src = np.empty((len(items), *source_size, 3), np.uint8) if source_size is not None else None

    def one(i: int) -> Sample:
        rel, label = items[i]
        path = root / rel
        sha = sha256_bytes(path.read_bytes())
        img = read_image_rgb(path)
        if out is not None and input_size is not None:
            out[i] = resize_to_input(img, input_size)
        if src is not None and source_size is not None:
            src[i] = resize_to_input(img, source_size)
        return Sample(rel, label, sha, dhash128(img))

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        samples = list(pool.map(one, range(len(items))))
    return samples, out, src


def sha256_of_files(root: Path, rels: list[str]) -> list[str]:
    return [sha256_bytes((Path(root) / r).read_bytes()) for r in rels]


def hash_bits(hexes: list[str]) -> np.ndarray:
    """``(N, 2)`` uint64 words of 128-bit hashes given as hex."""
    if not hexes:
        return np.zeros((0, 2), np.uint64)
    raw = np.frombuffer(b"".join(bytes.fromhex(h) for h in hexes), dtype=">u8")
    return raw.reshape(-1, 2).astype(np.uint64)


def near_pairs(
    a: list[str], b: list[str] | None = None, bits: int = NEAR_DUPLICATE_BITS
) -> np.ndarray:
    """Index pairs ``(i, j)`` with hash distance <= ``bits`` (within ``a``, ``i < j``; or
    between ``a`` and ``b``)."""
    ha = hash_bits(a)
    hb = ha if b is None else hash_bits(b)
    pairs: list[np.ndarray] = []
    for start in range(0, len(ha), 512):
        blk = ha[start : start + 512]
        d = np.bitwise_count(blk[:, None, 0] ^ hb[None, :, 0]) + np.bitwise_count(
            blk[:, None, 1] ^ hb[None, :, 1]
        )
        i, j = np.nonzero(d <= bits)
        i = i + start
        if b is None:
            keep = i < j
            i, j = i[keep], j[keep]
        pairs.append(np.stack([i, j], axis=1))
    return np.concatenate(pairs) if pairs else np.zeros((0, 2), int)


def duplicate_groups(samples: list[Sample]) -> np.ndarray:
    """Group id per sample: exact copies (sha256) and near copies (hash) share a group."""
    parent = list(range(len(samples)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)

    first: dict[str, int] = {}
    for i, s in enumerate(samples):
        if s.sha256 in first:
            union(first[s.sha256], i)
        else:
            first[s.sha256] = i
    for i, j in near_pairs([s.dhash for s in samples]):
        union(int(i), int(j))
    roots = [find(i) for i in range(len(samples))]
    ids = {r: k for k, r in enumerate(dict.fromkeys(roots))}
    return np.array([ids[r] for r in roots], int)


def dataset_info(root: Path, overrides: dict[str, str | None] | None = None) -> dict[str, Any]:
    """Name, licence and citation of a dataset: command-line values, else ``dataset.json``
    in its folder, else a known dataset recognised by folder name, else 'unknown'."""
    root = Path(root)
    info: dict[str, Any] = {"name": root.name, "licence": "unknown", "citation": ""}
    info.update(KNOWN_DATASETS.get(root.name.lower(), {}))
    meta = root / DATASET_INFO_FILE
    if meta.is_file():
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{meta} is not valid JSON ({exc}): fix or remove it") from exc
        if not isinstance(data, dict):
            raise InputError(f"{meta} must hold a JSON object with name, licence, citation")
        info.update({k: str(v) for k, v in data.items() if k in ("name", "licence", "citation")})
    for k, v in (overrides or {}).items():
        if v:
            info[k] = v
    return info
