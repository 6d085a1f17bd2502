"""``workbench`` command line. Imports stay inside the handlers so ``--help`` is instant."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

COHORT_FORMATS = ("auto", "manifest", "ispy1", "ispy1_clinical", "mama_mia", "breastdcedl")


def _add_cohort_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("cohort", help="manifest CSV (or folder holding manifest.csv), or a dataset "
                                  "root for --format ispy1 / mama_mia / breastdcedl")
    p.add_argument("--format", default="auto", choices=COHORT_FORMATS,
                   help="cohort layout (default: auto = manifest)")


def _load_cohort(args: argparse.Namespace):
    from workbench.cohort import load_cohort

    return load_cohort(args.cohort, fmt=args.format)


def _provenance(out: str | Path, *, config=None, cohort=None, inputs=None, extra=None) -> Path:
    """Write run_manifest.json (config, seed, versions, git, input hashes) into ``out``."""
    from workbench.provenance import cohort_inputs, write_manifest

    files = dict(inputs or {})
    if cohort is not None:
        files["cohort_source"] = cohort.source
        files.update(cohort_inputs(cohort.df, cohort.image_columns + ["mask"]))
    return write_manifest(out, config=config, inputs=files, extra=extra)


def cmd_synth(args: argparse.Namespace) -> int:
    from workbench.cohort.synthetic import generate_cohort

    manifest = generate_cohort(args.out, n=args.n, seed=args.seed, jobs=args.jobs,
                               progress=not args.quiet)
    import json

    summary = json.loads((Path(args.out) / "synth_summary.json").read_text())
    _provenance(args.out, config={"n": args.n, "seed": args.seed,
                                  "settings": summary.get("settings")},
                extra={"seed": args.seed, "outputs": {"manifest": str(manifest)}})
    print(f"Synthetic cohort: {summary['n']} patients, seed {summary['seed']}, "
          f"pCR rate {summary['pcr_rate']:.1%}")
    print(f"Oracle AUC (true probabilities): cohort {summary['oracle_auc_realised']:.3f}, "
          f"population {summary['oracle_auc_population']:.3f}")
    print(f"Generated in {summary['generation_seconds']:.1f} s. Manifest: {manifest}")
    return 0


def cmd_cohort_check(args: argparse.Namespace) -> int:
    from workbench.cohort.check import check_cohort, format_report

    cohort = _load_cohort(args)
    report = check_cohort(cohort, jobs=args.jobs, progress=not args.quiet)
    print(format_report(report))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        from workbench.cohort.table import problems_frame

        problems_frame(report.all_problems).to_csv(out / "qc_problems.csv", index=False)
        report.images.to_csv(out / "qc_images.csv", index=False)
        _provenance(out, cohort=cohort)
        print(f"QC tables written to {out}")
    n_err = sum(p.severity == "error" for p in report.all_problems)
    return 1 if (n_err and args.strict) else 0


def cmd_preprocess(args: argparse.Namespace) -> int:
    from workbench.config import load_config
    from workbench.runner import preprocess_stage

    cfg = load_config(args.config)
    cohort = _load_cohort(args)
    result = preprocess_stage(cohort, cfg, Path(args.out), jobs=args.jobs or cfg.jobs,
                              progress=not args.quiet)
    result.table.to_parquet(Path(args.out) / "preprocessed.parquet", index=False)
    _provenance(args.out, config=cfg, cohort=cohort)
    print(f"Preprocessed {len(result.table)} patients ({result.n_computed} computed, "
          f"{result.n_cached} from cache, {len(result.problems)} problems) into {args.out}")
    for p in result.problems:
        print(f"  - {p}")
    return 0


def cmd_table1(args: argparse.Namespace) -> int:
    from workbench.runner import table1_stage

    cohort = _load_cohort(args)
    table, paths = table1_stage(cohort, Path(args.out), seed=args.seed,
                                test_size=args.test_size)
    _provenance(args.out, cohort=cohort, config={"seed": args.seed,
                                                 "test_size": args.test_size},
                extra={"seed": args.seed})
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False))
    print(f"Table 1 written to {paths['csv']} and {paths['html']}")
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    from workbench.config import load_config
    from workbench.runner import DEFAULT_INTERIM, feature_stages, preprocess_stage

    cfg = load_config(args.config)
    cohort = _load_cohort(args)
    jobs = args.jobs or cfg.jobs
    out = Path(args.out)
    cache = Path(args.cache) if args.cache else DEFAULT_INTERIM
    pre = preprocess_stage(cohort, cfg, cache / "preprocessed", jobs=jobs,
                           progress=not args.quiet)
    for p in pre.problems:
        print(f"  - {p}")
    results = feature_stages(pre.table, cfg, cache, out, jobs=jobs, scheduler=args.scheduler,
                             progress=not args.quiet, stages=(args.stage,))
    if args.stage not in results:
        print(f"{args.stage}: disabled in {args.config}")
        return 0
    res = results[args.stage]
    _provenance(out, config=cfg, cohort=cohort)
    print(f"{args.stage}: {res.features.shape[1]} features x {len(res.features)} patients "
          f"({res.n_computed} computed, {res.n_cached} from cache, {res.n_failed} failed) "
          f"in {res.seconds:.1f} s")
    for _, row in res.errors.iterrows():
        print(f"  - [patient {row['patient_id']}] {row['step']}: {row['message']} "
              f"(file {row['file']})")
    if getattr(res, "label", ""):
        print(f"weights: {res.label}")
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    from workbench.config import load_config
    from workbench.models.stage import headline
    from workbench.runner import model_stage

    cfg = load_config(args.config)
    run_dir = Path(args.run)
    result = model_stage(cfg, run_dir, jobs=args.jobs or cfg.jobs, progress=not args.quiet,
                         force=args.force)
    how = ("unchanged inputs, settings and code: reused (--force reruns)" if result.cached
           else f"in {result.seconds:.0f} s")
    print(f"Models written to {result.out_dir} {how}")
    for fs in dict.fromkeys(result.metrics["feature_set"]):
        print("\n".join(headline(result.metrics, fs, args.headline_classifier)))
    for skip in result.skipped:
        print(f"  skipped: {skip}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from workbench.config import load_config
    from workbench.runner import audit_stage

    cfg = load_config(args.config)
    audit = audit_stage(cfg, Path(args.run), permutations=args.permutations,
                        feature_set=args.feature_set, classifier=args.classifier,
                        jobs=args.jobs or cfg.jobs, progress=not args.quiet, force=args.force)
    if audit.attrs.get("cached"):
        print("null audit: unchanged inputs, settings and code: reused (--force reruns)")
    summary = audit.attrs["summary"]
    fs = audit["feature_set"].iloc[0]
    print(f"Null audit: {audit['permutation'].nunique()} label permutations, feature set "
          f"{fs}, classifier {audit['classifier'].iloc[0]} ({audit.attrs['seconds']:.0f} s)")
    for _, r in summary.iterrows():
        tag = "  <- selection saw the test labels" if r["protocol"] == "paper" else ""
        print(f"  {r['protocol']:6s} {r['split']:4s} AUC mean {r['mean']:.3f} ± {r['sd']:.3f} "
              f"(range {r['min']:.2f}-{r['max']:.2f}){tag}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from workbench.runner import predict_stage

    cohort = _load_cohort(args)
    result = predict_stage(Path(args.model), cohort, Path(args.out),
                           jobs=args.jobs or 1, progress=not args.quiet)
    print(f"Predicted {len(result)} patients with {args.model} → {args.out}")
    if "warning" in result:
        print(f"WARNING: {result['warning'].iloc[0]}")
    for p in result.attrs.get("problems", []):
        print(f"  - {p}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from workbench.report import build_report

    out = build_report(Path(args.run), Path(args.out) if args.out else None)
    print(f"Report: {out}")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    import os
    import subprocess

    from workbench.app.serve_policy import auth_from_environment, check_serving, serve_command
    from workbench.report.data import RunData

    RunData(args.run).load("manifest")  # fail here, naming the file, not in the browser
    origins = list(args.allow_websocket_origin or [])
    auth = bool(args.basic_auth or args.oauth_provider) or auth_from_environment()
    check_serving(args.address, origins, auth)  # ServingPolicyError: exit 2, says how to fix
    cmd, env = serve_command(
        args.run, address=args.address, port=args.port, origins=origins, show=args.show,
        auth={k: getattr(args, k) for k in ("basic_auth", "oauth_provider", "oauth_key",
                                            "oauth_secret", "oauth_redirect_uri",
                                            "cookie_secret")})
    print(f"Dashboard of {args.run}: http://{args.address}:{args.port}/dashboard "
          "(Ctrl-C stops it)", flush=True)
    if os.name == "posix":  # become the server: Ctrl-C and kill reach it directly
        os.execve(cmd[0], cmd, env)
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 130


def cmd_config_check(args: argparse.Namespace) -> int:
    from workbench.config import load_config

    cfg = load_config(args.file)
    print(f"{args.file}: valid (name '{cfg.name}', cohort {cfg.cohort.format}, "
          f"{len(cfg.feature_sets)} feature sets, {len(cfg.classifiers)} classifiers)")
    return 0


def cmd_ibsi(args: argparse.Namespace) -> int:
    from workbench.features.ibsi import format_report, run_ibsi

    report = run_ibsi(Path(args.phantom), Path(args.reference))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        report.to_csv(out / "ibsi_rows.csv")
        report.to_json(out / "ibsi_report.json")
        _provenance(out, inputs={"phantom": args.phantom, "reference": args.reference})
        print(f"IBSI tables written to {out}")
    print(format_report(report))  # its last line is the conformance verdict
    return 0 if report.matched == report.total else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from workbench.config import load_config
    from workbench.runner import run_pipeline

    cfg = load_config(args.config)
    result = run_pipeline(cfg, out=Path(args.out) if args.out else None,
                          cache_dir=Path(args.cache) if args.cache else None,
                          jobs=args.jobs, progress=not args.quiet)
    print("\n".join(result.summary))
    print(f"Outputs: {result.run_dir}")
    print(f"  Table 1: {result.run_dir / 'table1' / 'table1.html'}")
    print(f"  problems: {result.run_dir / 'cohort' / 'problems.csv'}")
    if result.report is not None:
        print(f"Report: {result.report}")
        print(f"Dashboard: make dashboard RUN={result.run_dir}   "
              f"(or: workbench dashboard {result.run_dir})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="pCR fusion workbench: radiomics + deep CNN features from breast DCE-MRI.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("synth", help="generate the embedded synthetic DCE-MRI cohort")
    p.add_argument("--n", type=int, default=163, help="patients (default 163)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", required=True, help="output folder (manifest.csv + NIfTI files)")
    p.add_argument("--jobs", type=int, default=2, help="parallel workers (default 2)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("cohort", help="cohort tools")
    csub = p.add_subparsers(dest="cohort_command", metavar="ACTION", required=True)
    c = csub.add_parser("check", help="QC every patient: print a summary and every problem")
    _add_cohort_args(c)
    c.add_argument("--jobs", type=int, default=2)
    c.add_argument("--out", help="also write qc_problems.csv and qc_images.csv here")
    c.add_argument("--strict", action="store_true", help="exit 1 if any error was found")
    c.set_defaults(func=cmd_cohort_check)

    p = sub.add_parser("preprocess", help="N4 -> 1 mm isotropic -> per-patient z-score (cached)")
    _add_cohort_args(p)
    p.add_argument("--config", default="configs/demo.yaml", help="run config (preprocessing)")
    p.add_argument("--out", required=True, help="cache/output folder")
    p.add_argument("--jobs", type=int, default=None)
    p.set_defaults(func=cmd_preprocess)

    p = sub.add_parser("extract", help="feature extraction (preprocesses first, cached)")
    esub = p.add_subparsers(dest="stage", metavar="STAGE", required=True)
    for stage, text in (("radiomics", "PyRadiomics features (study: 1,702)"),
                        ("kinetic", "DCE kinetic features (PE, SER, FTV)"),
                        ("deep", "five ImageNet CNNs on the largest tumour slice (8,576)")):
        e = esub.add_parser(stage, help=text)
        e.add_argument("--cohort", required=True, help="manifest CSV or dataset root")
        e.add_argument("--format", default="auto", choices=COHORT_FORMATS)
        e.add_argument("--config", default="configs/demo.yaml", help="run config")
        e.add_argument("--out", required=True, help="folder for <stage>.parquet and errors")
        e.add_argument("--cache", help="content-addressed cache root (default data/interim)")
        e.add_argument("--jobs", type=int, default=None, help="local worker processes")
        e.add_argument("--scheduler", default=None,
                       help="Dask scheduler address (tcp://host:port) instead of local jobs")
        e.set_defaults(func=cmd_extract)

    p = sub.add_parser("model", help="selection + ten classifiers under each protocol")
    p.add_argument("--run", required=True, help="run directory with features/*.parquet")
    p.add_argument("--config", default="configs/demo.yaml")
    p.add_argument("--jobs", type=int, default=None)
    p.add_argument("--headline-classifier", default="lr", help="classifier for the summary")
    p.add_argument("--force", action="store_true",
                   help="rerun even when inputs, settings and code are unchanged")
    p.set_defaults(func=cmd_model)

    p = sub.add_parser("audit", help="null audit: honest vs paper protocol on permuted labels")
    p.add_argument("--run", required=True, help="run directory with features/*.parquet")
    p.add_argument("--config", default="configs/demo.yaml")
    p.add_argument("--permutations", type=int, default=None, help="default: config audit")
    p.add_argument("--feature-set", default=None, help="default: the config's audit section")
    p.add_argument("--classifier", default=None, help="default: the config's audit section")
    p.add_argument("--jobs", type=int, default=None)
    p.add_argument("--force", action="store_true",
                   help="rerun even when inputs, settings and code are unchanged")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("predict", help="apply a saved model (.skops) to a cohort")
    p.add_argument("--model", required=True, help="a models/<protocol>/<set>__<clf>.skops file")
    p.add_argument("--cohort", required=True, help="manifest CSV or dataset root")
    p.add_argument("--format", default="auto", choices=COHORT_FORMATS)
    p.add_argument("--out", required=True, help="CSV of probabilities")
    p.add_argument("--jobs", type=int, default=None)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("report", help="standalone HTML report of a run directory")
    p.add_argument("run", help="run directory")
    p.add_argument("--out", default=None, help="HTML file (default <run>/report.html)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("dashboard", help="serve the Panel dashboard of a run directory",
                       description="Serve the dashboard with `panel serve`. Only localhost "
                                   "unless --basic-auth or --oauth-provider is given.")
    p.add_argument("run", help="run directory (fixed for the server's lifetime)")
    p.add_argument("--address", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; anything else needs auth)")
    p.add_argument("--port", type=int, default=5006, help="port (default 5006)")
    p.add_argument("--allow-websocket-origin", action="append", default=None,
                   metavar="HOST[:PORT]", help="origins allowed to connect (repeatable; "
                                               "non-local ones need auth)")
    for flag, text in (("basic-auth", "Panel basic auth: a password, or a JSON file "
                                      "{user: password}"),
                       ("oauth-provider", "Panel OAuth provider (github, google, azure, ...)"),
                       ("oauth-key", "OAuth client id"), ("oauth-secret", "OAuth secret"),
                       ("oauth-redirect-uri", "OAuth redirect URI"),
                       ("cookie-secret", "secret signing login cookies (default: random)")):
        p.add_argument(f"--{flag}", default=None, help=text)
    p.add_argument("--show", action="store_true", help="open a browser")
    p.set_defaults(func=cmd_dashboard)

    p = sub.add_parser("table1", help="clinical characteristics by split and pCR")
    _add_cohort_args(p)
    p.add_argument("--out", required=True, help="folder for table1.csv / table1.html")
    p.add_argument("--seed", type=int, default=42, help="split seed (default 42)")
    p.add_argument("--test-size", type=float, default=0.3, help="test fraction (default 0.3)")
    p.set_defaults(func=cmd_table1)

    p = sub.add_parser("config", help="configuration tools")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    c = csub.add_parser("check", help="validate a run config YAML")
    c.add_argument("file")
    c.set_defaults(func=cmd_config_check)

    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ibsi1"
    p = sub.add_parser("ibsi", help="IBSI-1 digital phantom conformance of the radiomics layer")
    p.add_argument("--phantom", default=str(shared / "digital_phantom"),
                   help="folder with image.nii.gz and mask.nii.gz")
    p.add_argument("--reference", default=str(shared / "reference_values.csv"),
                   help="IBSI-1 reference values CSV")
    p.add_argument("--out", help="also write ibsi_rows.csv and ibsi_report.json here")
    p.set_defaults(func=cmd_ibsi)

    p = sub.add_parser("demo", help="run the pipeline on the configured cohort")
    p.add_argument("--config", default="configs/demo.yaml")
    p.add_argument("--out", help="run directory (default data/runs/<config name>)")
    p.add_argument("--cache", help="content-addressed caches (default data/interim)")
    p.add_argument("--jobs", type=int, default=None)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from workbench.errors import WorkbenchError

    try:
        return int(args.func(args) or 0)
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
