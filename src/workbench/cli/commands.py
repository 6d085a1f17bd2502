"""The handlers of the ``workbench`` commands: parse nothing, compute nothing — call the library
and print what it returns (the parser is :func:`workbench.cli.build_parser`)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

import pandas as pd

from workbench.app.serve_policy import auth_from_environment, check_serving, serve_command
from workbench.cohort import load_cohort
from workbench.cohort.check import check_cohort, format_report
from workbench.cohort.synthetic import generate_cohort
from workbench.cohort.table import CohortTable, problems_frame
from workbench.config import load_config, parse_config
from workbench.data import dataset_path, describe, ibsi1_dir
from workbench.errors import ConfigError
from workbench.evaluation.summary import headline
from workbench.external import CoverageError, coverage_lines
from workbench.features.ibsi import format_report as ibsi_text
from workbench.features.ibsi import run_ibsi
from workbench.models.model_file import audit_model_file
from workbench.pipeline import (
    audit_stage,
    feature_stages,
    model_stage,
    predict_stage,
    preprocess_stage,
    run_pipeline,
    table1_stage,
)
from workbench.pipeline.predict import coverage_path
from workbench.pipeline.settings import (
    default_cache,
    default_config_path,
    needs_images,
    radiomics_params_path,
)
from workbench.pipeline.stages import cohort_line, count_line
from workbench.pipeline.validate import require_run_inputs
from workbench.provenance import cohort_inputs, write_manifest
from workbench.rundata import RunData
from workbench.rundir import FEATURE_FAMILIES, RunDir

EXIT_OK, EXIT_PROBLEMS = 0, 1  # see workbench.cli.EXIT_CODES


def _config(args: argparse.Namespace):
    """The run config of ``--config`` (default: see
    :func:`~workbench.pipeline.settings.default_config_path`, printed when used)."""
    if getattr(args, "config", None) is None:
        args.config = str(default_config_path())
        print(f"config: {args.config} (no --config given)")
    return load_config(args.config)


def _out_dir(value: str | Path, flag: str = "--out") -> Path:
    """An output folder the user named: refused when it is an existing file."""
    out = Path(value)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{flag} {value} is an existing file, not a folder: give a folder "
                          "(created if missing)", step="output")
    return out


def _out_file(value: str | Path, flag: str = "--out") -> Path:
    """An output file the user named: refused when it is an existing folder."""
    out = Path(value)
    if out.is_dir():
        raise ConfigError(f"{flag} {value} is an existing folder: give a file name",
                          step="output")
    return out


def _strict(args: argparse.Namespace, excluded: int) -> int:
    """Exit status of a stage: 1 with --strict when any patient was excluded."""
    if excluded and getattr(args, "strict", False):
        print(f"--strict: {excluded} patient(s) excluded; exit status 1")
        return EXIT_PROBLEMS
    return EXIT_OK


def _load_cohort(args: argparse.Namespace):
    return load_cohort(args.cohort, fmt=args.format)


def _provenance(out: str | Path, *, config=None, cohort=None, inputs=None, extra=None) -> Path:
    """Write run_manifest.json (config, seed, versions, git, input hashes) into ``out``."""

    files = dict(inputs or {})
    if cohort is not None:
        files["cohort_source"] = cohort.source
        files.update(cohort_inputs(cohort.df, cohort.image_columns + ["mask"]))
    return write_manifest(out, config=config, inputs=files, extra=extra)


def cmd_synth(args: argparse.Namespace) -> int:
    _out_dir(args.out)
    manifest = generate_cohort(args.out, n=args.n, seed=args.seed, jobs=args.jobs,
                               progress=not args.quiet, site=args.site, images=args.images)

    summary = json.loads((Path(args.out) / "synth_summary.json").read_text())
    _provenance(args.out, config={"n": args.n, "seed": args.seed, "site": args.site,
                                  "images": args.images, "settings": summary.get("settings")},
                extra={"seed": args.seed, "outputs": {"manifest": str(manifest)}})
    print(f"Synthetic cohort: {summary['n']} patients, seed {summary['seed']}, "
          f"pCR rate {summary['pcr_rate']:.1%}")
    realised = summary["oracle_auc_realised"]
    realised = ("undefined (one class only: AUC needs both pCR and no pCR)" if realised is None
                else f"{realised:.3f}")
    print(f"Oracle AUC (true probabilities): cohort {realised}, "
          f"population {summary['oracle_auc_population']:.3f}")
    print(f"Generated in {summary['generation_seconds']:.1f} s. Manifest: {manifest}")
    return 0


def cmd_cohort_check(args: argparse.Namespace) -> int:
    out = _out_dir(args.out) if args.out else None
    cohort = _load_cohort(args)
    report = check_cohort(cohort, jobs=args.jobs, progress=not args.quiet,
                          max_voxels=args.max_voxels)
    print(format_report(report))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        problems_frame(report.all_problems).to_csv(out / "qc_problems.csv", index=False)
        report.images.to_csv(out / "qc_images.csv", index=False)
        _provenance(out, cohort=cohort)
        print(f"QC tables written to {out}")
    n_err = sum(p.severity == "error" for p in report.all_problems)
    return 1 if (n_err and args.strict) else 0


def cmd_preprocess(args: argparse.Namespace) -> int:
    out = _out_dir(args.out)
    cfg = _config(args)
    cohort = _load_cohort(args)
    result = preprocess_stage(cohort, cfg, out, jobs=args.jobs or cfg.jobs,
                              progress=not args.quiet)
    result.table.to_parquet(out / "preprocessed.parquet", index=False)
    result.problems_frame().to_csv(out / "preprocess_problems.csv", index=False)
    _provenance(out, config=cfg, cohort=cohort)
    print(cohort_line(cohort))
    counts = count_line(result.n_patients, len(result.table), result.n_failed,
                        result.n_upstream)
    print(f"preprocess: {counts} ({result.n_computed} computed, {result.n_cached} from cache) "
          f"into {out}")
    for p in result.problems:
        print(f"  - {p}")
    return _strict(args, result.n_failed + result.n_upstream)


def cmd_table1(args: argparse.Namespace) -> int:
    out = _out_dir(args.out)
    cohort = _load_cohort(args)
    table, paths = table1_stage(cohort, out, seed=args.seed,
                                test_size=args.test_size)
    _provenance(args.out, cohort=cohort, config={"seed": args.seed,
                                                 "test_size": args.test_size},
                extra={"seed": args.seed})
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False))
    print(f"Table 1 written to {paths['csv']} and {paths['html']}")
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    out = _out_dir(args.out)
    cfg = _config(args)
    require_run_inputs(cfg, (args.stage,))  # before any preprocessing
    cohort = _load_cohort(args)
    jobs = args.jobs or cfg.jobs
    cache = Path(args.cache) if args.cache else default_cache()
    pre = preprocess_stage(cohort, cfg, cache / "preprocessed", jobs=jobs,
                           progress=not args.quiet)
    cohort.add_problems(pre.problems)
    print(cohort_line(cohort))
    print("preprocess: " + count_line(pre.n_patients, len(pre.table), pre.n_failed,
                                      pre.n_upstream))
    results = feature_stages(pre.table, cfg, cache, out, jobs=jobs, scheduler=args.scheduler,
                             progress=not args.quiet, stages=(args.stage,), cohort=cohort)
    if args.stage not in results:
        print(f"{args.stage}: disabled in {args.config}")
        return _strict(args, pre.n_failed + pre.n_upstream)
    res = results[args.stage]
    cohort.add_problems(res.problems(args.stage))
    _save_cohort(cohort, RunDir(out), args.stage)
    _provenance(out, config=cfg, cohort=cohort)
    print(f"{args.stage}: {res.features.shape[1]} features; "
          f"{count_line(res.n_patients, len(res.features), res.n_failed, res.n_upstream)} "
          f"({res.n_computed} computed, {res.n_cached} from cache) in {res.seconds:.1f} s")
    for _, row in res.errors.iterrows():
        who = "" if row["patient_id"] is None else f"[patient {row['patient_id']}] "
        where = f" (file {row['file']})" if row["file"] else ""
        print(f"  - {who}{row['step']}: {row['message']}{where}")
    if getattr(res, "label", ""):
        print(f"weights: {res.label}")
    print(f"errors table: {RunDir(out).path(f'{args.stage}_errors')}")
    return _strict(args, res.n_failed + res.n_upstream)


def _save_cohort(cohort: CohortTable, run: RunDir, stage: str) -> None:
    """The cohort and its problems into the run (what ``workbench model`` reads), keeping
    the problems recorded there by the other feature families."""
    if run.exists("cohort"):
        others = tuple(f"{f}:" for f in FEATURE_FAMILIES if f != stage)
        earlier = CohortTable.load(run.path("cohort").parent).problems
        cohort.add_problems(p for p in earlier if p.step.startswith(others))
    cohort.save(run.path("cohort").parent)


def cmd_model(args: argparse.Namespace) -> int:
    cfg = _config(args)
    if args.headline_classifier not in cfg.classifiers:
        raise ConfigError(f"--headline-classifier {args.headline_classifier!r} is not one of "
                          f"the classifiers of {args.config}: {list(cfg.classifiers)}",
                          step="model")
    run_dir = Path(args.run)
    result = model_stage(cfg, run_dir, jobs=args.jobs or cfg.jobs, progress=not args.quiet,
                         force=args.force)
    how = ("unchanged inputs, settings and code: reused (--force reruns)" if result.cached
           else f"in {result.seconds:.0f} s")
    print(f"Models written to {result.out_dir} {how}")
    print(result.exclusion_line + f" (see {RunDir(run_dir).path('model_excluded')})")
    for fs in dict.fromkeys(result.metrics["feature_set"]):
        print("\n".join(headline(result.metrics, fs, args.headline_classifier)))
    for skip in result.skipped:
        print(f"  skipped: {skip}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    cfg = _config(args)
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


def cmd_controls(args: argparse.Namespace) -> int:
    from workbench.pipeline.controls import control_lines, controls_stage

    cfg = _config(args)
    result = controls_stage(cfg, Path(args.run), Path(args.cache) if args.cache else None,
                            jobs=args.jobs or cfg.jobs, progress=not args.quiet,
                            force=args.force)
    if result.cached:
        print("controls: unchanged inputs, settings and code: reused (--force reruns)")
    print("\n".join(control_lines(result)))
    for problem in result.problems[:10]:
        print(f"  {problem}")
    print(f"Controls: {RunDir(args.run).path('control_auc')}")
    return 0


def cmd_robustness(args: argparse.Namespace) -> int:
    from workbench.pipeline.robustness import robustness_lines, robustness_stage

    cfg = _config(args)
    result = robustness_stage(cfg, Path(args.run), Path(args.cache) if args.cache else None,
                              jobs=args.jobs or cfg.jobs, progress=not args.quiet,
                              force=args.force)
    if result.cached:
        print("robustness: unchanged inputs, settings and code: reused (--force reruns)")
    print("\n".join(robustness_lines(result)))
    for problem in result.problems[:10]:
        print(f"  {problem}")
    print(f"ICC table: {RunDir(args.run).path('icc')}")
    return 0


def cmd_harmonisation(args: argparse.Namespace) -> int:
    from workbench.pipeline.harmonisation import harmonisation_lines, harmonisation_stage

    cfg = _config(args)
    table = harmonisation_stage(cfg, Path(args.run), jobs=args.jobs or cfg.jobs,
                                progress=not args.quiet, force=args.force)
    if table.attrs.get("cached"):
        print("harmonisation: unchanged inputs, settings and code: reused (--force reruns)")
    print("\n".join(harmonisation_lines(table)))
    print(f"Harmonisation: {RunDir(args.run).path('harmonisation_auc')}")
    return 0


def _coding(path: str | None) -> dict:
    """A ``--coding`` YAML file, validated as a run config's ``cohort.coding``."""
    if not path:
        return {}
    import yaml

    file = Path(path)
    if not file.is_file():
        raise ConfigError("coding file not found", step="config", path=file)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", step="config", path=file) from None
    cfg = parse_config({"cohort": {"format": "manifest", "path": ".", "coding": data}},
                       source=str(file))
    return {col: dict(mapping) for col, mapping in cfg.cohort.coding.items()}


def _external_cohort(args: argparse.Namespace) -> CohortTable:
    """The cohort of ``predict`` / ``validate``, with its value mapping; its coding problems
    are printed (they stop the command unless --allow-missing, see the coverage)."""
    cohort = load_cohort(args.cohort, fmt=args.format, coding=_coding(args.coding))
    print(cohort_line(cohort))
    shown = 10
    for problem in cohort.problems[:shown]:  # coding errors, ignored columns, bad rows
        print(f"  {problem}")
    if len(cohort.problems) > shown:
        print(f"  ... and {len(cohort.problems) - shown} more problems")
    return cohort


def _print_coverage(lines: list[str]) -> None:
    for line in lines:
        print(line)


def cmd_predict(args: argparse.Namespace) -> int:
    audit_model_file(args.model)  # refuse an untrusted file before any other work
    out = _out_file(args.out)
    cohort = _external_cohort(args)
    try:
        result = predict_stage(Path(args.model), cohort, out,
                               cache_dir=Path(args.cache) if args.cache else None,
                               jobs=args.jobs or 1, progress=not args.quiet,
                               allow_missing=args.allow_missing)
    except CoverageError as exc:
        if getattr(exc, "coverage", None) is not None:
            _print_coverage(coverage_lines(exc.coverage, len(cohort.df)))
            print(f"coverage table: {coverage_path(out)}")
        raise
    _print_coverage(result.attrs["coverage_lines"])
    print(f"Predicted {len(result)} patients with {args.model} → {args.out} (coverage: "
          f"{coverage_path(out)})")
    if "fitted_on" in result:
        print(f"model fitted on the {result['fitted_on'].iloc[0]}")
    if "warning" in result:
        print(f"WARNING: {result['warning'].iloc[0]}")
    for p in result.attrs.get("problems", []):
        print(f"  - {p}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from workbench.pipeline.external import validate_stage, validation_lines

    audit_model_file(args.model)
    out = _out_dir(args.out) if args.out else None
    cohort = _external_cohort(args)
    try:
        summary = validate_stage(Path(args.model), cohort, out,
                                 run=Path(args.run) if args.run else None, name=args.name,
                                 cache_dir=Path(args.cache) if args.cache else None,
                                 jobs=args.jobs or 1, progress=not args.quiet,
                                 allow_missing=args.allow_missing, n_boot=args.n_boot,
                                 seed=args.seed)
    except CoverageError as exc:
        if getattr(exc, "coverage", None) is not None:
            _print_coverage(coverage_lines(exc.coverage, len(cohort.df)))
        raise
    folder = Path(summary["folder"])
    _print_coverage(coverage_lines(pd.read_csv(folder / "coverage.csv"),
                                   summary["cohort"]["n_scored"]))
    print("\n".join(validation_lines(summary)))
    print(f"Validation ({summary['seconds']:.1f} s): {folder}")
    if (folder / "report.html").is_file():
        print(f"  report: {folder / 'report.html'}")
    return 0


def cmd_refit(args: argparse.Namespace) -> int:
    from workbench.pipeline.external import refit_stage

    audit_model_file(args.model)
    path = refit_stage(Path(args.model), run=Path(args.run) if args.run else None,
                       out=_out_file(args.out, "--out") if args.out else None)
    print(f"Refitted on the whole development cohort: {path}")
    print("  its honest estimates are those of the run (CV + test split): this fit has no "
          "held-out patients")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from workbench.report import build_report  # HoloViews and Bokeh: only for this command

    out = build_report(Path(args.run), _out_file(args.out) if args.out else None)
    print(f"Report: {out}")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:

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
    cfg = load_config(args.file)
    require_run_inputs(cfg)  # what the config points to: cohort, radiomics params, weights
    images = (f"radiomics parameters {radiomics_params_path(cfg)} valid" if needs_images(cfg)
              else "clinical only: no image stage")
    print(f"{args.file}: valid (name '{cfg.name}', cohort {cfg.cohort.format}, "
          f"{len(cfg.feature_sets)} feature sets, {len(cfg.classifiers)} classifiers; "
          f"{images})")
    return 0


def cmd_ibsi(args: argparse.Namespace) -> int:
    # --phantom / --reference override --data, which overrides the copy shipped in the package
    folder = Path(args.data) if args.data else None
    if folder is None and not (args.phantom and args.reference):
        folder = ibsi1_dir()
    phantom = Path(args.phantom) if args.phantom else folder / "digital_phantom"
    reference = Path(args.reference) if args.reference else folder / "reference_values.csv"
    report = run_ibsi(phantom, reference)
    if args.out:
        out = _out_dir(args.out)
        out.mkdir(parents=True, exist_ok=True)
        report.to_csv(out / "ibsi_rows.csv")
        report.to_json(out / "ibsi_report.json")
        _provenance(out, inputs={"phantom": phantom, "reference": reference})
        print(f"IBSI tables written to {out}")
    print(ibsi_text(report))  # its last line is the conformance verdict
    return 0 if report.matched == report.total else 1


def cmd_data(args: argparse.Namespace) -> int:
    if args.data_command == "path":
        print(dataset_path(args.name))
    else:
        print(describe())
    return 0


def cmd_learning_curve(args: argparse.Namespace) -> int:
    # HoloViews and Bokeh (the plot): only for this command
    from workbench.pipeline.learning_curve import default_out, learning_curve, learning_curve_lines

    cfg = _config(args)
    table = learning_curve(cfg, args.sizes, out=_out_dir(args.out) if args.out else default_out(cfg),
                           repeats=args.repeats, jobs=args.jobs, progress=not args.quiet,
                           cache_dir=Path(args.cache) if args.cache else None,
                           base_run=Path(args.run) if args.run else None)
    if table.attrs["cached_sizes"]:
        print(f"learning curve: sizes {table.attrs['cached_sizes']}: unchanged inputs, "
              "settings and code: reused")
    print("\n".join(learning_curve_lines(table)))
    print(f"Learning curve ({table.attrs['seconds']:.0f} s): {table.attrs['csv']}")
    print(f"  plot: {table.attrs['html']}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _config(args)
    result = run_pipeline(cfg, out=_out_dir(args.out) if args.out else None,
                          cache_dir=Path(args.cache) if args.cache else None,
                          jobs=args.jobs, scheduler=args.scheduler, progress=not args.quiet)
    print("\n".join(result.summary))
    print(f"Outputs: {result.run_dir}")
    print(f"  Table 1: {result.run.path('table1_html')}")
    print(f"  problems: {result.run.path('problems')}")
    if result.report is not None:
        print(f"Report: {result.report}")
        print(f"Dashboard: make dashboard RUN={result.run_dir}   "
              f"(or: workbench dashboard {result.run_dir})")
    return _strict(args, result.n_excluded)
