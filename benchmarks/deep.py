"""Benchmark: batched deep-feature inference against a one-image-at-a-time ``model.predict`` loop.

Usage::

    workbench synth --out data/raw/synth_bench --n 32      # or any manifest cohort
    python benchmarks/deep.py --cohort data/raw/synth_bench [--n 16] [--batch-size 32]

Steps (one process, one machine, one after the other):

0. preprocess the first N patients with ``preprocess_cohort`` (cached in ``--work``) and make
   their 224 x 224 crops (``load_patient_crop``);
1. per network, built ONCE (``build_network``; both methods use the same model object):
   (a) the naive loop a user would write: ``model.predict(x[None])`` per image, with the
   network's ``preprocess_input`` per image;
   (b) ours: ``embed`` (stacked batches of ``--batch-size`` through ``predict_on_batch``).
   Each method gets one untimed warm-up call first, so graph tracing is not timed for either.

Prints images/s per network for (a) and (b), the ratio b/a (target >= 3) and the largest
absolute difference between their features, and projects the time for n = 163. Weights do not
change the speed; the default ``--weights random`` avoids any download attempt.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cohort", required=True, help="folder with manifest.csv, or the CSV")
    parser.add_argument("--n", type=int, default=16, help="patients to use (default 16)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--networks", nargs="+", default=None, help="default: all five")
    parser.add_argument("--weights", default="random", help="imagenet | random | PATH")
    parser.add_argument("--jobs", type=int, default=2, help="preprocessing jobs")
    parser.add_argument("--work", default=None, help="work folder (default: a temp folder); "
                        "preprocessed images are cached there between runs")
    parser.add_argument("--preprocessed", default=None, help="preprocessing cache to use "
                        "(default <work>/preprocessed; e.g. data/interim/preprocessed)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from workbench.cohort.loaders.manifest import load_manifest
    from workbench.features.deep import (
        NETWORK_NAMES,
        build_network,
        embed,
        preprocess_function,
        resolve_weights,
    )
    from workbench.features.deep.crops import CropSettings, load_patient_crop
    from workbench.pipeline.preprocess import preprocess_cohort

    networks = args.networks or list(NETWORK_NAMES)
    manifest = Path(args.cohort)
    manifest = manifest / "manifest.csv" if manifest.is_dir() else manifest
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench_deep_"))
    cohort = load_manifest(manifest)
    cohort = dataclasses.replace(cohort, df=cohort.df.head(args.n).reset_index(drop=True))
    t0 = time.perf_counter()
    cache = Path(args.preprocessed) if args.preprocessed else work / "preprocessed"
    pre = preprocess_cohort(cohort, cache, jobs=args.jobs, progress=False)
    print(f"preprocessed {len(pre.table)} patients in {time.perf_counter() - t0:.1f} s "
          f"({pre.n_cached} cached)")
    settings = CropSettings(image_size=args.image_size)
    t0 = time.perf_counter()
    images = np.concatenate([
        load_patient_crop({p: row[f"image_{p}"] for p in settings.phases}, row["mask"],
                          settings, patient=row["patient_id"]).images
        for _, row in pre.table.iterrows()])
    t_crop = time.perf_counter() - t0
    n = len(images)
    print(f"crops: {n} images of {args.image_size} px in {t_crop:.1f} s "
          f"({t_crop / n * 1000:.0f} ms/patient)")
    sources = resolve_weights(networks, args.weights, download=False)

    import tensorflow as tf

    print(f"TensorFlow {tf.__version__}, devices {[d.name for d in tf.config.list_logical_devices()]}"
          f"; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (other processes "
          "competing for the CPUs distort both timings)")
    header = (f"{'network':<18}{'build s':>8}{'naive img/s':>13}{'ours img/s':>12}"
              f"{'ratio':>8}{'max |a-b|':>11}")
    print(header)
    totals = {"build": 0.0, "naive": 0.0, "ours": 0.0}
    ratios = []
    for net in networks:
        t0 = time.perf_counter()
        model = build_network(net, sources[net], args.image_size)
        t_build = time.perf_counter() - t0
        pre_fn = preprocess_function(net)
        # warm-up (tracing) for both methods, untimed
        model.predict(pre_fn(images[:1] * 255.0), verbose=0)
        embed(model, net, images[:args.batch_size], args.batch_size)
        if n % args.batch_size and n > args.batch_size:
            embed(model, net, images[:n % args.batch_size], args.batch_size)
        t0 = time.perf_counter()
        naive = np.concatenate([model.predict(pre_fn(images[i:i + 1] * 255.0), verbose=0)
                                for i in range(n)])
        t_naive = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours = embed(model, net, images, args.batch_size)
        t_ours = time.perf_counter() - t0
        diff = float(np.abs(naive - ours).max())
        ratios.append(t_naive / t_ours)
        totals["build"] += t_build
        totals["naive"] += t_naive
        totals["ours"] += t_ours
        print(f"{net:<18}{t_build:8.1f}{n / t_naive:13.2f}{n / t_ours:12.2f}"
              f"{t_naive / t_ours:7.2f}x{diff:11.2g}")
        del model
    print(f"{'all five' if len(networks) == 5 else 'all':<18}{totals['build']:8.1f}"
          f"{n / totals['naive']:13.2f}{n / totals['ours']:12.2f}"
          f"{totals['naive'] / totals['ours']:7.2f}x   (target >= 3x)")
    per_image = {k: totals[k] / n for k in ("naive", "ours")}
    crop_per = t_crop / n
    for k in ("naive", "ours"):
        projected = totals["build"] + 163 * (per_image[k] + crop_per)
        print(f"projected n=163, {k:<5}: {projected / 60:6.1f} min (builds "
              f"{totals['build']:.0f} s + crops + inference)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
