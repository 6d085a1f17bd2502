"""Benchmark: our radiomics stage against a plain sequential PyRadiomics loop.

Usage::

    workbench synth --out data/raw/synth_bench --n 10      # or any manifest cohort
    python benchmarks/radiomics.py --cohort data/raw/synth_bench [--n 10] [--jobs 2]
    python benchmarks/radiomics.py --cohort data/raw/synthetic --layouts   # determinism

Steps (all in this process, on the same machine, one after the other):

0. preprocess the first N patients once with ``preprocess_cohort`` (cached in ``--work``);
1. (a) a plain loop as a user would write it: one ``RadiomicsFeatureExtractor`` with the same
   parameters, ``execute(image, mask)`` per patient and phase, no cache; with one BLAS thread,
   as our workers use (``--plain-blas-default`` to leave BLAS alone: GLCM MCC, computed with
   LAPACK eigenvalues, then differs in its last bits);
2. (b) ``extract_radiomics(..., jobs=J)`` from an empty store;
3. (c) the same call again (everything cached).

Prints the max absolute difference between (a) and (b) over every feature (target: 0), the
speed ratio a/b (target >= 1.8 with 2 jobs) and the cached-rerun ratio b/c (target >= 50).

``--layouts`` instead runs preprocessing + radiomics of the first N patients from empty caches
three times — ``--jobs 1``, ``--jobs 2`` and a local Dask cluster (2 worker processes,
``distributed.LocalCluster``) — and prints, against ``--jobs 1``, how many feature values
differ and the max |difference| (target: 0 and 0; before SimpleITK's thread count was pinned,
3,505 of 17,020 values differed on 2 cores), with each layout's wall time.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
# This script's own name would shadow the PyRadiomics package (``import radiomics``) when run
# as ``python benchmarks/radiomics.py``: drop its folder from the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cohort", required=True, help="folder with manifest.csv, or the CSV")
    parser.add_argument("--n", type=int, default=10, help="patients to use (default 10)")
    parser.add_argument("--jobs", type=int, default=2, help="jobs for our extractor (default 2)")
    parser.add_argument("--params", default=str(REPO / "configs" / "radiomics" / "paper.yaml"))
    parser.add_argument("--phases", nargs="+", default=["pre", "early"])
    parser.add_argument("--work", default=None, help="work folder (default: a temp folder); "
                        "preprocessed images are cached there between runs")
    parser.add_argument("--layouts", action="store_true",
                        help="compare --jobs 1, --jobs 2 and a local Dask cluster instead "
                        "(preprocessing + radiomics from empty caches; target max |d| = 0)")
    parser.add_argument("--itk-threads", type=int, default=1,
                        help="SimpleITK threads per patient (the run config's itk_threads)")
    parser.add_argument("--plain-blas-default", action="store_true",
                        help="run (a) with the default BLAS threads instead of one: GLCM MCC "
                        "(LAPACK eigvals) then differs in the last bits, and a loaded machine "
                        "may slow (a) down through thread contention")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from workbench.cohort.loaders.manifest import load_manifest
    from workbench.features.radiomics import extract_radiomics, load_params
    from workbench.imaging.preprocess import PreprocessSettings
    from workbench.pipeline.preprocess import preprocess_cohort

    manifest = Path(args.cohort)
    manifest = manifest / "manifest.csv" if manifest.is_dir() else manifest
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench_radiomics_"))
    cohort = load_manifest(manifest)
    cohort = dataclasses.replace(cohort, df=cohort.df.head(args.n).reset_index(drop=True))
    settings = PreprocessSettings(itk_threads=args.itk_threads)
    if args.layouts:
        try:
            return layouts(cohort, work, args, settings)
        finally:
            if not args.work:
                shutil.rmtree(work, ignore_errors=True)
    t0 = time.perf_counter()
    pre = preprocess_cohort(cohort, work / "preprocessed", settings=settings, jobs=args.jobs,
                            progress=False)
    table = pre.table
    print(f"preprocessed {len(table)} patients in {time.perf_counter() - t0:.1f} s "
          f"({pre.n_cached} cached); median tumour {table['mask_voxels'].median():.0f} voxels")

    # (a) plain PyRadiomics loop
    import radiomics
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    radiomics.setVerbosity(logging.ERROR)
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    from threadpoolctl import threadpool_limits

    extractor = RadiomicsFeatureExtractor(load_params(args.params).pyradiomics())
    blas = None if args.plain_blas_default else 1
    t0, c0 = time.perf_counter(), _cpu_seconds()
    plain_rows = {}
    for _, row in table.iterrows():
        values = {}
        for phase in args.phases:
            with threadpool_limits(limits=blas, user_api="blas"):
                result = extractor.execute(row[f"image_{phase}"], row["mask"])
            values.update({f"rad__{phase}__{k}": float(v) for k, v in result.items()
                           if not k.startswith("diagnostics_")})
        plain_rows[row["patient_id"]] = values
    t_plain, cpu_plain = time.perf_counter() - t0, _cpu_seconds() - c0
    plain = pd.DataFrame.from_dict(plain_rows, orient="index")

    # (b) ours from an empty store, (c) cached rerun
    store = work / "features"
    shutil.rmtree(store, ignore_errors=True)
    t0, c0 = time.perf_counter(), _cpu_seconds()
    ours = extract_radiomics(table, store, params_path=args.params, phases=args.phases,
                             jobs=args.jobs, progress=False, itk_threads=args.itk_threads)
    t_ours, cpu_ours = time.perf_counter() - t0, _cpu_seconds() - c0
    t0 = time.perf_counter()
    cached = extract_radiomics(table, store, params_path=args.params, phases=args.phases,
                               jobs=args.jobs, progress=False, itk_threads=args.itk_threads)
    t_cached = time.perf_counter() - t0

    feats = ours.features
    same_cols = set(feats.columns) == set(plain.columns)
    a = plain.loc[feats.index, feats.columns].to_numpy() if same_cols else np.array([np.nan])
    b = feats.to_numpy()
    both_nan = np.isnan(a) & np.isnan(b)
    diff = float(np.nanmax(np.where(both_nan, 0.0, np.abs(a - b)))) if same_cols else np.inf
    if same_cols and diff > 0:
        delta = pd.DataFrame(np.where(both_nan, 0.0, np.abs(a - b)), index=feats.index,
                             columns=feats.columns)
        worst = delta.max().sort_values(ascending=False)
        print("differing features:", ", ".join(f"{c} ({v:.3g})" for c, v in
                                               worst[worst > 0].head(8).items()))
    n = len(table)
    print(f"patients {n}, features per patient {feats.shape[1]}, errors {len(ours.errors)}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (other processes "
          "competing for the CPUs make the a/b ratio meaningless)")
    print(f"(a) plain PyRadiomics loop : {t_plain:8.2f} s ({t_plain / n:.2f} s/patient)")
    print(f"(b) ours, {args.jobs} jobs, empty : {t_ours:8.2f} s ({t_ours / n:.2f} s/patient)")
    print(f"(c) ours, cached rerun     : {t_cached:8.3f} s ({cached.n_cached} cached)")
    print(f"values identical           : max |a - b| = {diff:.3g} "
          f"({'OK' if diff == 0 else 'DIFFERENT'})")
    print(f"speed ratio a/b            : {t_plain / t_ours:6.2f}x (target >= 1.8)")
    print(f"cached-rerun ratio b/c     : {t_ours / t_cached:6.1f}x (target >= 50)")
    print(f"CPU seconds a / b          : {cpu_plain:.1f} / {cpu_ours:.1f} (incl. worker start-up); "
          f"with {args.jobs} idle cores a/b would be about "
          f"{args.jobs * cpu_plain / max(cpu_ours, 1e-9):.2f}x")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if diff == 0 else 1


def layouts(cohort, work: Path, args: argparse.Namespace, settings) -> int:
    """Preprocessing + radiomics from empty caches with --jobs 1, --jobs 2 and a local Dask
    cluster; print how many values differ from --jobs 1 and by how much."""
    from workbench.features.radiomics import extract_radiomics
    from workbench.pipeline.preprocess import preprocess_cohort

    def one(name: str, jobs: int = 1, scheduler=None) -> pd.DataFrame:
        folder = work / "layouts" / name
        shutil.rmtree(folder, ignore_errors=True)
        t0 = time.perf_counter()
        pre = preprocess_cohort(cohort, folder / "preprocessed", settings=settings, jobs=jobs,
                                scheduler=scheduler, progress=False)
        t1 = time.perf_counter()
        res = extract_radiomics(pre.table, folder / "features", params_path=args.params,
                                phases=args.phases, jobs=jobs, scheduler=scheduler,
                                progress=False, itk_threads=settings.itk_threads)
        print(f"{name:8s}: preprocessing {t1 - t0:6.1f} s, radiomics "
              f"{time.perf_counter() - t1:6.1f} s, {res.features.shape[0]} patients x "
              f"{res.features.shape[1]} features, {len(pre.problems) + len(res.errors)} "
              "problems", flush=True)
        return res.features

    tables = {"jobs 1": one("jobs 1", 1), "jobs 2": one("jobs 2", 2)}
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        print("dask   : distributed is not installed; layout skipped")
    else:
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            tables["dask"] = one("dask", scheduler=client)
    ref = tables["jobs 1"]
    worst = 0.0
    for name, table in list(tables.items())[1:]:
        if table.shape != ref.shape or set(table.columns) != set(ref.columns):
            print(f"jobs 1 vs {name}: different tables ({ref.shape} vs {table.shape})")
            worst = np.inf
            continue
        a, b = ref.to_numpy(), table.loc[ref.index, ref.columns].to_numpy()
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        delta = float(np.abs(np.where(same, 0.0, a - b)).max())
        worst = max(worst, delta)
        print(f"jobs 1 vs {name}: {int((~same).sum())} of {a.size} values differ, max |d| = "
              f"{delta:.3g} ({'OK' if delta == 0 else 'DIFFERENT'})")
    print(f"SimpleITK threads per patient: {settings.itk_threads}; {os.cpu_count()} CPUs")
    return 0 if worst == 0 else 1


def _cpu_seconds() -> float:
    """CPU time of this process and of its live and finished children (joblib workers)."""
    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:4])  # user, system, children user, children system
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            pass
    return total


if __name__ == "__main__":
    sys.exit(main())
