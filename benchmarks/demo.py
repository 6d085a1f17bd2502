"""Benchmark: `make demo` end to end, from an empty cache and then with everything cached.

Usage::

    python benchmarks/demo.py [--config configs/demo.yaml] [--work /tmp/demo_bench] [--keep]

Runs ``workbench run`` twice, as ``make demo`` does, in a fresh work folder (its own
synthetic cohort, cache and run directory, so nothing under ``data/`` is reused):

1. cold: the synthetic cohort is generated, then every stage runs (preprocessing, radiomics,
   deep and kinetic features, the model grid under both protocols, the null audit, the report);
2. warm: the same command again; every stage must come from its cache.

Prints both wall times, the per-stage seconds from each run's manifest, and the ratio of each
time to its target (cold <= 20 min, warm <= 20 s on 2 cores; a ratio <= 1 meets it).
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

import yaml

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"cold": 20 * 60, "warm": 20}


def bench_config(config: Path, work: Path) -> Path:
    """A copy of ``config`` whose cohort lives under ``work`` (absolute paths)."""
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["cohort"]["path"] = str(work / "raw" / "synthetic")
    radiomics = data.get("radiomics", {})
    if radiomics.get("params"):  # relative to the original config's folder
        radiomics["params"] = str((config.parent / radiomics["params"]).resolve())
    out = work / config.name
    out.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return out


def run_demo(config: Path, work: Path, label: str) -> tuple[float, dict]:
    cmd = [str(Path(sys.executable).with_name("workbench")), "run", "--config", str(config),
           "--out", str(work / "run"), "--cache", str(work / "cache")]
    print(f"\n[{label}] {' '.join(cmd)}", flush=True)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, check=False)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{label} run failed with exit code {done.returncode}")
    manifest = json.loads((work / "run" / "run_manifest.json").read_text(encoding="utf-8"))
    return seconds, manifest.get("stages_seconds", {})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "demo.yaml"))
    parser.add_argument("--work", default=None, help="work folder (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="demo_bench_")).resolve()
    if work.exists() and any(work.iterdir()):
        raise SystemExit(f"{work} is not empty: the cold run needs an empty cache")
    work.mkdir(parents=True, exist_ok=True)
    config = bench_config(Path(args.config).resolve(), work)
    try:
        times = {label: run_demo(config, work, label) for label in ("cold", "warm")}
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("\nstage seconds (cold | warm):")
    stages = dict.fromkeys([*times["cold"][1], *times["warm"][1]])
    for stage in stages:
        print(f"  {stage:12s} {times['cold'][1].get(stage, float('nan')):8.1f} | "
              f"{times['warm'][1].get(stage, float('nan')):8.1f}")
    for label, (seconds, _) in times.items():
        print(f"{label}: {seconds / 60:.1f} min; target {TARGETS[label] / 60:.0f} min; "
              f"ratio {seconds / TARGETS[label]:.2f} (<= 1 meets it)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
