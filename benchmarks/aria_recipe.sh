#!/usr/bin/env bash
# Leukemia recipe (docs/models.md): a `field` model on ARIA's ALL smear fields (benign
# hematogones vs early pre-B, pre-B and pro-B ALL; 224x224, one label per image).
# The data's licence is not verified: the package is written OUTSIDE the repository and
# neither its images nor these weights may be committed. Usage:
#   benchmarks/aria_recipe.sh [OUT_DIR] [EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/micro_app_aria}
EPOCHS=${2:-40}
DATA=${ARIA:-../shared/data/aria_all}
case "$(realpath -m "$OUT")" in "$(pwd)"/*) echo "write the ARIA model outside the repository" >&2; exit 2;; esac
.venv/bin/micro-app train "$DATA" --arch live_cnn --scope field --input-size 128 \
  --arch-option width=1.5 --out "$OUT/aria_field" --epochs "$EPOCHS" --patience 8 --seed 0 \
  --data-name "ARIA ALL (Aria et al. 2021, Taleqani Hospital)" --data-licence "not verified" \
  --quiet --overwrite
.venv/bin/micro-app evaluate "$OUT/aria_field" "$DATA" --out "$OUT/aria_field_eval"
