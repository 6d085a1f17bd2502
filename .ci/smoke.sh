#!/usr/bin/env bash
# Install smoke test: a cold, non-editable install of this checkout pinned by requirements.lock
# into a fresh venv, then a quick end-to-end run from a folder outside the repository.
#
#   .ci/smoke.sh [PYTHON]        # e.g. .ci/smoke.sh python3.13 (default: python3)
#
# Run by .ci/run on a second supported Python (the suite runs on the Makefile's default).
# Everything goes to a temporary folder, removed at the end (SMOKE_KEEP=1 keeps it).
# Exits non-zero on the first failure.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="${1:-python3}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/workbench-smoke.XXXXXX")"
if [ "${SMOKE_KEEP:-0}" = 1 ]; then
  echo "smoke: keeping $WORK"
else
  trap 'rm -rf "$WORK"' EXIT
fi
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"  # TensorFlow's C++ INFO/WARNING banners
step() { printf '\n== smoke: %s (%s)\n' "$1" "$(date +%T)"; }
START=$SECONDS

step "interpreter"
"$PY" -c 'import sys; print(sys.version.split()[0], sys.executable)'

# Build from a copy of the tracked (and new, not ignored) files: building in the checkout would
# leave build/ and *.egg-info behind, and the copy shows that the package is complete.
step "copy the checkout"
mkdir -p "$WORK/src"
if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$REPO" && git ls-files -z --cached --others --exclude-standard \
     | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
     | tar --null -T - -cf -) | tar -C "$WORK/src" -xf -
else
  tar -C "$REPO" --exclude=./.venv --exclude=./.git --exclude=./data -cf - . | tar -C "$WORK/src" -xf -
fi

step "fresh venv + pip install -c requirements.lock . (cold, non-editable)"
T0=$SECONDS
"$PY" -m venv "$WORK/venv"
BIN="$WORK/venv/bin"
"$BIN/python" -m pip install --quiet --upgrade "pip>=24" wheel
"$BIN/python" -m pip install --quiet -c "$REPO/requirements.lock" "$WORK/src"
echo "install: $((SECONDS - T0)) s"
"$BIN/python" -m pip check

# From here on nothing may come from the checkout except the radiomics parameter file.
mkdir -p "$WORK/run"
cd "$WORK/run"

step "imports and CLI"
"$BIN/workbench" --help >/dev/null
"$BIN/python" -c "import workbench, workbench.cli, radiomics, tensorflow, catboost, xgboost, shap, panel; \
print('workbench from', workbench.__file__)"

step "synthetic cohort"
"$BIN/workbench" -q synth --n 16 --seed 0 --out cohort --jobs 2

step "pipeline: radiomics + kinetic + resnet50 (random weights) -> lr, honest and paper"
cat > smoke.yaml <<EOF
# 16 synthetic patients; one network with random weights (nothing is downloaded); no audit.
version: 1
name: smoke
jobs: 2
cohort: {format: synthetic, path: cohort, synthetic: {n: 16, seed: 0}}
radiomics: {params: $REPO/configs/radiomics/paper.yaml}
deep: {networks: [resnet50], weights: random, batch_size: 8}
feature_sets: [clinical, radiomics]
classifiers: [lr]
selection: {lasso: {n_alphas: 10}}
protocol: {kinds: [honest, paper], cv_folds: 3}
audit: {permutations: 0}
EOF
T0=$SECONDS
"$BIN/workbench" -q run --config smoke.yaml --out run --cache cache
echo "pipeline: $((SECONDS - T0)) s"
for f in run/run_manifest.json run/models/metrics.parquet run/report.html; do
  test -s "$f" || { echo "smoke: $f missing after the run" >&2; exit 1; }
done

step "IBSI-1 digital phantom (package data)"
"$BIN/workbench" ibsi | tee ibsi.txt
grep -q "IBSI digital phantom: 282/282 matched" ibsi.txt \
  || { echo "smoke: IBSI conformance line missing or not 282/282" >&2; exit 1; }

step "done in $((SECONDS - START)) s on $("$BIN/python" -c 'import sys; print(sys.version.split()[0])')"
