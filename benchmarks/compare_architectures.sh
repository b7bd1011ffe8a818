#!/usr/bin/env bash
# Architecture comparison for docs/models.md: every network on ONE fixed split of PBC
# (300 images per class, seed 0: 1440 train / 480 validation / 480 test), reduced epochs,
# scored on the test split and timed through the app's batched inference path.
# Usage: benchmarks/compare_architectures.sh [OUT_DIR] [EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/micro_app_compare}
EPOCHS=${2:-10}
DATA=${PBC:-../shared/data/pbc}
mkdir -p "$OUT"
run() {  # name arch input [extra train args...]
  local name=$1 arch=$2 size=$3; shift 3
  .venv/bin/micro-app train "$DATA" --arch "$arch" --input-size "$size" --out "$OUT/$name" \
    --max-per-class 300 --seed 0 --epochs "$EPOCHS" --quiet --overwrite "$@" \
    > "$OUT/$name.train.log" 2>&1
  .venv/bin/micro-app bench --model "$OUT/$name" --frames 20 --json > "$OUT/$name.bench.json" 2>/dev/null
  echo "$name done $(date +%T)"
}
run live_cnn live_cnn 80 --arch-option width=1.5
run snet snet 128
run basic_cnn basic_cnn 128
run efficientnet_b0 efficientnet_b0 128
run efficientnet_b0_attention efficientnet_b0_attention 128
.venv/bin/python benchmarks/compare_table.py "$OUT"
