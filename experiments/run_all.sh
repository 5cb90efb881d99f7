#!/usr/bin/env bash
# Run every experiment. --quick: a small subset of each, for CI and smoke tests (about a minute on a CPU).
# On a GPU machine, pass --device gpu to the runtime experiment (done below when JAX sees a GPU);
# every result file records the device it ran on.
set -euo pipefail
cd "$(dirname "$0")"
QUICK=""
if [[ "${1:-}" == "--quick" ]]; then QUICK="--quick"; fi
# quick runs write into an ignored folder, so that a smoke test never touches the committed results
if [[ -n "$QUICK" ]]; then OUT="${LRENUM_RESULTS:-results-quick}"; else OUT="${LRENUM_RESULTS:-results}"; fi
mkdir -p "$OUT"
if [[ -z "$QUICK" ]]; then python train_digits.py; fi   # quick runs use the committed models
python rank_vs_children.py $QUICK --out "$OUT"
python runtime_vs_regions.py $QUICK --out "$OUT" --device cpu
if python -c "import jax, sys; sys.exit(0 if any(d.platform == 'gpu' for d in jax.devices()) else 1)" 2>/dev/null; then
  python runtime_vs_regions.py $QUICK --out "$OUT" --device gpu
fi
python regions_over_training.py $QUICK --out "$OUT"
python compare_counts.py $QUICK --out "$OUT"
lrenum plot models/pca2_16x16.npz -o "$OUT/partition_pca2_16x16${QUICK:+-quick}.png" --title "pca2_16x16 (trained on digits, 2 PCA inputs)"
lrenum plot models/pca4_8x8.npz -o "$OUT/partition_pca4_8x8_slice${QUICK:+-quick}.png" --title "pca4_8x8: slice through the data box's center, axes 1-2"
rm -f "$OUT/regions_pca4_8x8.h5"
lrenum enumerate models/pca4_8x8.npz -o "$OUT/regions_pca4_8x8.h5" -q --force
python analyse_regions.py "$OUT/regions_pca4_8x8.h5" --out "$OUT"
rm -f "$OUT/regions_pca4_8x8.h5"
echo "all experiments done; results in $OUT"
