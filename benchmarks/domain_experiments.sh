#!/usr/bin/env bash
# Which robustness measures help on another lab's cells? live_cnn (80x80, width 1.5) on one
# fixed PBC split (300 images per class, seed 0), each variant scored on the BCCD typed
# fields by benchmarks/bench_domain.py. Usage: benchmarks/domain_experiments.sh [OUT] [EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/micro_app_domain}
EPOCHS=${2:-20}
DATA=${PBC:-../shared/data/pbc}
mkdir -p "$OUT"
run() {  # name [extra train args...]
  local name=$1; shift
  .venv/bin/micro-app train "$DATA" --arch live_cnn --input-size 80 --arch-option width=1.5 \
    --out "$OUT/$name" --max-per-class 300 --seed 0 --epochs "$EPOCHS" --quiet --overwrite "$@" \
    > "$OUT/$name.train.log" 2>&1
  .venv/bin/python benchmarks/bench_domain.py --model "$OUT/$name" > "$OUT/$name.domain.txt" 2>/dev/null
  echo "== $name"; grep -E "test split|BCCD|unlike" "$OUT/$name.train.log" "$OUT/$name.domain.txt" || true
}
run plain
run robust --robust-augment
run reinhard --stain reinhard
run robust_reinhard --robust-augment --stain reinhard
