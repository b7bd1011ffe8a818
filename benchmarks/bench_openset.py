"""How well the open-set check flags cells of a kind the model never saw, without blast
images: train with one PBC class left out (``micro-app train --classes`` without it), then
score that class's cells against the held-out test cells of the classes it knows.

    .venv/bin/python benchmarks/bench_openset.py --model /tmp/without_ig --left-out ig

Reports the ROC AUC of the check's score (the energy of the logits, from the penultimate
features) and, for comparison, of the usual baseline (1 - top softmax probability); the
share of the left-out class flagged at the threshold that flags 10 % of known test cells
(for both scores), and at the card's own threshold (the 95th percentile of validation
cells); and what the model called the left-out cells. PBC has no patient identifiers:
known-class scores are optimistic.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from micro_app.core.imageio import list_images, read_image_rgb
from micro_app.core.models import load_package
from micro_app.core.models.classifier import Classifier
from micro_app.core.models.gradcam import resize_to_input
from micro_app.core.openset import OPENSET_FILE, OpenSetStats
from micro_app.training.metrics import roc_auc
from micro_app.training.split import SPLIT_FILE, read_split

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _predict(clf: Classifier, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs, feats = [], []
    for i in range(0, len(images), 64):
        p, f = clf.predict_full(images[i : i + 64])
        assert f is not None, "the package has no open-set check (card.extra.open_set)"
        probs.append(p)
        feats.append(f)
    return np.concatenate(probs), np.concatenate(feats)


def run(model: Path, left_out: str, pbc: Path) -> dict[str, Any]:
    pkg = load_package(model)
    card = pkg.card
    if left_out in card.classes:
        raise SystemExit(f"{model} knows {left_out}: train it without that class")
    entry = card.extra["open_set"]
    stats = OpenSetStats.load(model / OPENSET_FILE, entry["sha256"])
    size = card.input_size
    test = [e for e in read_split(model / SPLIT_FILE)["images"] if e["split"] == "test"]
    known = np.stack([resize_to_input(read_image_rgb(pbc / e["path"]), size) for e in test])
    unknown = np.stack(
        [resize_to_input(read_image_rgb(p), size) for p in list_images(pbc / left_out)]
    )
    clf = Classifier(pkg)
    pk, fk = _predict(clf, known)
    pu, fu = _predict(clf, unknown)
    sk, su = stats.scores(fk), stats.scores(fu)
    is_unknown = np.concatenate([np.zeros(len(sk), bool), np.ones(len(su), bool)])
    at10 = float(np.percentile(sk, 90))
    mk, mu = 1 - pk.max(1), 1 - pu.max(1)
    msp10 = float(np.percentile(mk, 90))
    return {
        "model": str(model),
        "left_out": left_out,
        "known_test_cells": len(sk),
        "left_out_cells": len(su),
        "roc_auc": roc_auc(np.concatenate([sk, su]), is_unknown),
        "roc_auc_softmax_baseline": roc_auc(np.concatenate([mk, mu]), is_unknown),
        "softmax_baseline_at_10pct_known": float(np.mean(mu > msp10)),
        "at_10pct_known": {
            "threshold": at10,
            "known_flagged": float(np.mean(sk > at10)),
            "left_out_flagged": float(np.mean(su > at10)),
        },
        "at_card_threshold": {
            "threshold": stats.threshold,
            "known_flagged": float(np.mean(sk > stats.threshold)),
            "left_out_flagged": float(np.mean(su > stats.threshold)),
        },
        "left_out_called": dict(Counter(card.classes[int(k)] for k in pu.argmax(1))),
        "left_out_median_top_probability": float(np.median(pu.max(1))),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--left-out", required=True)
    ap.add_argument("--pbc", type=Path, default=DATA / "pbc")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    r = run(args.model, args.left_out, args.pbc)
    if args.json:
        print(json.dumps(r))
        return 0
    a, c = r["at_10pct_known"], r["at_card_threshold"]
    print(
        f"{r['model']}: left out {r['left_out']} ({r['left_out_cells']} cells) vs "
        f"{r['known_test_cells']} known test cells"
    )
    print(f"  ROC AUC {r['roc_auc']:.3f} (softmax baseline {r['roc_auc_softmax_baseline']:.3f})")
    print(
        f"  flagging 10 % of known cells: {a['left_out_flagged']:.1%} of {r['left_out']} "
        f"flagged (softmax baseline {r['softmax_baseline_at_10pct_known']:.1%})"
    )
    print(
        f"  card threshold {c['threshold']:.2f}: known {c['known_flagged']:.1%}, "
        f"{r['left_out']} {c['left_out_flagged']:.1%}"
    )
    print(
        f"  {r['left_out']} called: {r['left_out_called']} (median top probability "
        f"{r['left_out_median_top_probability']:.2f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
