"""A lab's own small data set trained from ImageNet: the same command on several seeds.

    .venv/bin/python benchmarks/bench_small_data.py [--per-class 60 20] [--seeds 0 1 2 3 4]
        [--warmup 3 0] [--json OUT]

For each size, a data set of ``--per-class`` PBC crops per class is drawn once (seed 0)
from the training split of the shipped default's ``split.json`` and laid out as class
folders (links, nothing copied); each seed then runs the command a researcher would type,

    micro-app train DIR --arch efficientnet_lite0 --weights imagenet --out M --seed S
        --warmup-epochs W

(``W`` 0 is the recipe before the warm-up: every layer from the first epoch), and the
kept model is scored with ``micro-app evaluate`` on 200 PBC crops of the default's test
split (25 per class), which no draw ever contains. Reported per size and recipe: held-out
accuracy mean, min and max over the seeds, the kept epoch and whether the run said "not
fit to use". PBC has no patient identifiers: held-out scores are optimistic.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "pbc"
DEFAULT = ROOT / "models" / "lite0_pbc_bccd"


def draw(split: dict[str, Any], side: str, per_class: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[dict[str, Any]]] = {}
    for e in split["images"]:
        if e["split"] == side:
            by_class.setdefault(e["label"], []).append(e)
    out = []
    for label in sorted(by_class):
        items = by_class[label]
        out += [items[i] for i in sorted(rng.permutation(len(items))[:per_class])]
    return out


def lay_out(items: list[dict[str, Any]], data: Path, folder: Path) -> Path:
    for e in items:
        target = folder / e["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to((data / e["path"]).resolve())
    return folder


def run_once(
    dataset: Path, test: Path, seed: int, warmup: int, work: Path, more: list[str]
) -> dict[str, Any]:
    out = work / f"m_{dataset.name}_s{seed}_w{warmup}"
    cli = [sys.executable, "-c", "import sys; from micro_app.cli import main; sys.exit(main())"]
    t0 = time.perf_counter()
    train = subprocess.run(
        [
            *cli,
            "train",
            str(dataset),
            "--arch",
            "efficientnet_lite0",
            "--weights",
            "imagenet",
            "--out",
            str(out),
            "--seed",
            str(seed),
            "--warmup-epochs",
            str(warmup),
            "--quiet",
            *more,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - t0
    if train.returncode != 0:
        raise SystemExit(f"training failed:\n{train.stdout[-2000:]}\n{train.stderr[-2000:]}")
    evaluate = subprocess.run(
        [*cli, "evaluate", str(out), str(test), "--json", "--backend", "onnx"],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(evaluate.stdout.strip().splitlines()[-1])
    card = json.loads((out / "card.json").read_text(encoding="utf-8"))
    training = card["extra"]["training"]
    fit = training.get("fitness") or {}
    shutil.rmtree(out, ignore_errors=True)
    return {
        "seed": seed,
        "accuracy": round(float(report["accuracy"]), 4),
        "kept_epoch": training["best_epoch"],
        "epochs_run": training["epochs_run"],
        "fit": fit.get("fit"),
        "validation_accuracy": fit.get("validation_accuracy"),
        "not_fit_line": any(line.startswith("NOT FIT") for line in train.stdout.splitlines()),
        "seconds": round(seconds),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--per-class", type=int, nargs="+", default=[60, 20])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--warmup", type=int, nargs="+", default=[3, 0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--train-args", default="", help="more micro-app train options, e.g. '--fine-tune-lr 3e-4'"
    )
    args = ap.parse_args()
    more = args.train_args.split()
    if not args.data.is_dir():
        raise SystemExit(f"PBC not found at {args.data}: pass --data DIR")
    split = json.loads((DEFAULT / "split.json").read_text(encoding="utf-8"))
    work = Path(tempfile.mkdtemp(prefix="bench_small_"))
    results: list[dict[str, Any]] = []
    try:
        test = lay_out(draw(split, "test", 25, 0), args.data, work / "heldout")
        for n in args.per_class:
            dataset = lay_out(draw(split, "train", n, 0), args.data, work / f"pbc{n}")
            for warmup in args.warmup:
                runs = []
                for seed in args.seeds:
                    runs.append(run_once(dataset, test, seed, warmup, work, more))
                    print(f"{n}/class warm-up {warmup} seed {seed}: {runs[-1]}", flush=True)
                acc = np.array([r["accuracy"] for r in runs])
                results.append(
                    {
                        "per_class": n,
                        "warmup_epochs": warmup,
                        "train_args": args.train_args,
                        "mean": round(float(acc.mean()), 4),
                        "min": round(float(acc.min()), 4),
                        "max": round(float(acc.max()), 4),
                        "spread": round(float(acc.max() - acc.min()), 4),
                        "runs": runs,
                    }
                )
                if args.json:
                    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("per class | warm-up | held-out accuracy mean (min-max) | kept epochs | not fit")
    for r in results:
        kept = [x["kept_epoch"] for x in r["runs"]]
        unfit = sum(1 for x in r["runs"] if x["not_fit_line"])
        print(
            f"{r['per_class']:>9} | {r['warmup_epochs']:>7} | {r['mean']:.3f} "
            f"({r['min']:.3f}-{r['max']:.3f}) | {kept} | {unfit}/{len(r['runs'])}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
