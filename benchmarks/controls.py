"""Benchmark: the negative-controls stage's image work against the radiomics stage, cold.

Usage::

    python benchmarks/controls.py --run data/runs/demo [--n 12] [--jobs 1]

On the first N patients of a run's preprocessing table by patient ID (small and large
tumours alike), in this process, one after the other, each from an empty temporary store:

1. the radiomics stage as a run does it (``extract_radiomics``, the config's phases: shape +
   2 phases per patient);
2. the controls stage's image work for every configured kind (derivation with
   ``derive_cohort`` + ``extract_radiomics`` on ``controls.phases``), per kind.

Prints the seconds of each and the ratio controls / radiomics (target <= 1.5); the modelling
part of the controls stage (seconds, independent of the images) is printed by the stage itself
in ``controls/summary.json``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from workbench.config import load_config
from workbench.features.radiomics import extract_radiomics
from workbench.pipeline.derived import derive_cohort
from workbench.pipeline.settings import radiomics_params_path
from workbench.rundir import RunDir

# benchmarks/radiomics.py would shadow the PyRadiomics package (imported lazily by the
# extraction) when run as ``python benchmarks/controls.py``: drop this folder from the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="data/runs/demo")
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    pre = RunDir(args.run).read("preprocessed").sort_values("patient_id").head(args.n)
    params = radiomics_params_path(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        extract_radiomics(pre, Path(tmp) / "rad", params_path=params,
                          phases=cfg.radiomics.phases, jobs=args.jobs, progress=False,
                          itk_threads=cfg.itk_threads)
        radiomics = time.perf_counter() - t0
        per_kind = {}
        reference = cfg.cohort.phases[0]
        phases = list(dict.fromkeys([*cfg.controls.phases, reference]))
        for kind in cfg.controls.kinds:
            t0 = time.perf_counter()
            derived, _ = derive_cohort(pre, phases, "control", {"kind": kind},
                                       Path(tmp) / "derived", seed=cfg.controls.seed,
                                       jobs=args.jobs, progress=False,
                                       itk_threads=cfg.itk_threads, reference_phase=reference)
            extract_radiomics(derived, Path(tmp) / "ctl", params_path=params,
                              phases=cfg.controls.phases, jobs=args.jobs, progress=False,
                              itk_threads=cfg.itk_threads)
            per_kind[kind] = time.perf_counter() - t0
    controls = sum(per_kind.values())
    print(f"{len(pre)} patients, jobs {args.jobs}: radiomics stage {radiomics:.1f} s "
          f"(phases {', '.join(cfg.radiomics.phases)})")
    for kind, sec in per_kind.items():
        print(f"  control {kind}: {sec:.1f} s ({sec / radiomics:.2f} x radiomics)")
    ratio = controls / radiomics
    print(f"controls image work {controls:.1f} s = {ratio:.2f} x the radiomics stage "
          f"(target <= 1.5: {'met' if ratio <= 1.5 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
