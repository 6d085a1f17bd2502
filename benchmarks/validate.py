"""Benchmark: ``workbench validate`` of a clinical model on 1,000 external patients.

Usage::

    python benchmarks/validate.py [--model data/runs/demo/deploy/honest/clinical__lr.skops]
                                  [--n 1000] [--repeat 3]

Draws the embedded external site (image-less, ``--n`` patients, seed 1) and times
:func:`workbench.pipeline.external.validate_stage` end to end (scoring and coverage, every
table with 2,000 bootstrap replicates, case mix, membership model, HTML report), ``--repeat``
times in one process, and as one cold ``workbench validate`` command (interpreter start and
imports included). The model defaults to the demo's refitted clinical model when ``make demo``
has written it, else a clinical-only run on 160 image-less development patients is built in a
temporary folder. Prints each time beside the target (the report within 30 s for 1,000
patients on 2 cores) and their ratio (<= 1 meets it); exits 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workbench.cohort import load_cohort
from workbench.cohort.synthetic import generate_cohort
from workbench.config import parse_config
from workbench.pipeline.external import validate_stage
from workbench.pipeline.run import run_pipeline
from workbench.rundir import RunDir

REPO = Path(__file__).resolve().parents[1]
DEMO_MODEL = REPO / "data/runs/demo/deploy/honest/clinical__lr.skops"
TARGET_S = 30.0


def _model(tmp: Path) -> Path:
    if DEMO_MODEL.is_file():
        return DEMO_MODEL
    generate_cohort(tmp / "dev", n=160, seed=0, images=False, progress=False)
    cfg = parse_config({"name": "bench", "cohort": {"format": "manifest",
                                                    "path": "dev/manifest.csv"},
                        "feature_sets": ["clinical"], "classifiers": ["lr"],
                        "protocol": {"kinds": ["honest"]}, "audit": {"permutations": 0}},
                       source=str(tmp / "config.yaml"))
    result = run_pipeline(cfg, out=tmp / "run", cache_dir=tmp / "cache", progress=False)
    return RunDir(result.run_dir).path("model", protocol="honest", feature_set="clinical",
                                       classifier="lr")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        model = args.model or _model(tmp)
        manifest = generate_cohort(tmp / "site", n=args.n, seed=1, site="external",
                                   images=False, progress=False)
        cohort = load_cohort(manifest)
        times = []
        for i in range(args.repeat):
            start = time.perf_counter()
            validate_stage(model, cohort, out=tmp / f"v{i}", progress=False)
            times.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "workbench.cli", "-q", "validate", "--model",
                        str(model), "--cohort", str(manifest), "--out", str(tmp / "cold")],
                       check=True, stdout=subprocess.DEVNULL)
        cold = time.perf_counter() - start
    print(f"workbench validate, {args.n} external patients, model {model}")
    for label, seconds in ((f"in process, best of {args.repeat}", min(times)),
                           ("in process, first", times[0]), ("cold command", cold)):
        print(f"  {label:28s} {seconds:6.1f} s   target {TARGET_S:.0f} s   ratio "
              f"{seconds / TARGET_S:.2f}")
    return 0 if cold <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
