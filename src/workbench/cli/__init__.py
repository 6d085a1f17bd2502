"""``workbench`` command line: the parser here, the thin handlers in :mod:`.commands`.

The handlers are imported only when a command runs, so ``workbench --help`` is instant.
Every failure is one line on stderr (the traceback only with ``-v``) and an exit code from
:data:`EXIT_CODES`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback

from workbench import names
from workbench.errors import WorkbenchError

# the loaders' names (workbench.names: what workbench.cohort.LOADERS holds), plus "auto"
COHORT_FORMATS = ("auto", *names.COHORT_FORMATS)

#: Exit status of ``workbench`` (README: "Exit codes").
EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES = {
    EXIT_OK: "success (with --strict: and no patient excluded anywhere)",
    EXIT_PROBLEMS: "finished, but with --strict a patient was excluded (cohort check: an "
                   "error was found); ibsi: a feature did not match its reference",
    EXIT_USAGE: "usage, configuration or input error (bad option, config, cohort table, run "
                "directory, output path, unreadable or unwritable file); nothing or only "
                "part was done",
    EXIT_INTERNAL: "unexpected internal error (a bug): rerun with -v for the traceback",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}
_STRICT_HELP = "exit 1 if any patient is excluded (at this stage or upstream)"


def _at_least_one(flag: str):
    """An argparse type: a whole number >= 1, else a usage error naming ``flag``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"{flag} must be a whole number >= 1, not {text!r}")
        return value
    parse.__name__ = flag  # argparse names the type in its message
    return parse


_WORKERS = _at_least_one("--jobs")


def _add_cohort_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("cohort", help="manifest CSV (or folder holding manifest.csv), or a dataset "
                                  "root for --format ispy1 / mama_mia / breastdcedl")
    p.add_argument("--format", default="auto", choices=COHORT_FORMATS,
                   help="cohort layout (default: auto = manifest)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="pCR fusion workbench: radiomics + deep CNN features from breast DCE-MRI.",
        epilog="exit codes: " + "; ".join(f"{code} {text}" for code, text in EXIT_CODES.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging, and the traceback of any error")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("synth", help="generate the embedded synthetic DCE-MRI cohort")
    p.add_argument("--n", type=int, default=163, help="patients (default 163)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", required=True, help="output folder (manifest.csv + NIfTI files)")
    p.add_argument("--jobs", type=_WORKERS, default=2, help="parallel workers (default 2)")
    p.add_argument("--site", default="development", choices=names.SYNTHETIC_SITES,
                   help="development (default: the I-SPY1-like cohort, IDs SYN0001...) or "
                        "external: the same pCR law at another site (other scanner, noise, "
                        "case mix and pCR prevalence; IDs EXT0001...)")
    p.add_argument("--no-images", dest="images", action="store_false",
                   help="clinical table and labels only (no images; 1,000 patients in a "
                        "second): enough to validate a clinical model")
    p.set_defaults(handler="synth")

    p = sub.add_parser("cohort", help="cohort tools")
    csub = p.add_subparsers(dest="cohort_command", metavar="ACTION", required=True)
    c = csub.add_parser("check", help="QC every patient: print a summary and every problem")
    _add_cohort_args(c)
    c.add_argument("--jobs", type=_WORKERS, default=2)
    c.add_argument("--max-voxels", type=_at_least_one("--max-voxels"), default=None,
                   help="refuse images whose header claims more voxels (default 512^3, as "
                        "limits.max_voxels in a run config)")
    c.add_argument("--out", help="also write qc_problems.csv and qc_images.csv here")
    c.add_argument("--strict", action="store_true",
                   help="exit 1 if any error was found (a patient excluded)")
    c.set_defaults(handler="cohort_check")

    p = sub.add_parser("preprocess", help="N4 -> 1 mm isotropic -> per-patient z-score (cached)")
    _add_cohort_args(p)
    p.add_argument("--config", default=None, help="run config (preprocessing; default "
                                                  "configs/demo.yaml, see 'run')")
    p.add_argument("--out", required=True, help="cache/output folder (preprocessed.parquet, "
                                                "preprocess_problems.csv)")
    p.add_argument("--jobs", type=_WORKERS, default=None)
    p.add_argument("--strict", action="store_true", help=_STRICT_HELP)
    p.set_defaults(handler="preprocess")

    p = sub.add_parser("extract", help="feature extraction (preprocesses first, cached)")
    esub = p.add_subparsers(dest="stage", metavar="STAGE", required=True)
    for stage, text in (("radiomics", "PyRadiomics features (study: 1,702)"),
                        ("kinetic", "DCE kinetic features (PE, SER, FTV)"),
                        ("deep", "five ImageNet CNNs on the largest tumour slice (8,576)")):
        e = esub.add_parser(stage, help=text)
        e.add_argument("--cohort", required=True, help="manifest CSV or dataset root")
        e.add_argument("--format", default="auto", choices=COHORT_FORMATS)
        e.add_argument("--config", default=None, help="run config (default "
                                                      "configs/demo.yaml, see 'run')")
        e.add_argument("--out", required=True,
                       help="run directory: writes features/<stage>.parquet and its errors, "
                            "and the cohort (cohort/) that `workbench model` reads")
        e.add_argument("--cache", help="content-addressed cache root (default data/interim)")
        e.add_argument("--jobs", type=_WORKERS, default=None, help="local worker processes")
        e.add_argument("--scheduler", default=None,
                       help="Dask scheduler address (tcp://host:port) instead of local jobs")
        e.add_argument("--strict", action="store_true", help=_STRICT_HELP)
        e.set_defaults(handler="extract")

    p = sub.add_parser("model", help="selection + ten classifiers under each protocol")
    p.add_argument("--run", required=True, help="run directory with features/*.parquet")
    p.add_argument("--config", default=None,
                   help="run config (default configs/demo.yaml, see 'run')")
    p.add_argument("--jobs", type=_WORKERS, default=None)
    p.add_argument("--headline-classifier", default="lr", choices=names.CLASSIFIER_NAMES,
                   metavar="CLASSIFIER",
                   help="classifier of the summary lines, one of the config's classifiers "
                        f"({', '.join(names.CLASSIFIER_NAMES)}; default lr)")
    p.add_argument("--force", action="store_true",
                   help="rerun even when inputs, settings and code are unchanged")
    p.set_defaults(handler="model")

    p = sub.add_parser("audit", help="null audit: honest vs paper protocol on permuted labels")
    p.add_argument("--run", required=True, help="run directory with features/*.parquet")
    p.add_argument("--config", default=None,
                   help="run config (default configs/demo.yaml, see 'run')")
    p.add_argument("--permutations", type=int, default=None, help="default: config audit")
    p.add_argument("--feature-set", default=None, help="default: the config's audit section")
    p.add_argument("--classifier", default=None, help="default: the config's audit section")
    p.add_argument("--jobs", type=_WORKERS, default=None)
    p.add_argument("--force", action="store_true",
                   help="rerun even when inputs, settings and code are unchanged")
    p.set_defaults(handler="audit")

    rigour = {
        "controls": "image negative controls: derived images (ROI shuffled, random, moved, "
                    "random shape) through the same extraction and honest modelling",
        "robustness": "perturbation robustness: ICC(3,1) of every radiomics feature over "
                      "rotated, noisy, re-segmented copies of a patient sample",
        "harmonisation": "ComBat comparison on a multi-site run: none / in-fold / whole "
                         "cohort, with a null audit of each",
    }
    for name, text in rigour.items():
        p = sub.add_parser(name, help=text, description=text + ". Writes into the run "
                           "directory (README: radiomics rigour); cached by inputs, settings "
                           "and code.")
        p.add_argument("--run", required=True, help="a finished run directory")
        p.add_argument("--config", default=None,
                       help="run config (default configs/demo.yaml, see 'run')")
        if name != "harmonisation":
            p.add_argument("--cache", default=None,
                           help="image and feature caches (default data/interim)")
        p.add_argument("--jobs", type=_WORKERS, default=None)
        p.add_argument("--force", action="store_true",
                       help="rerun even when inputs, settings and code are unchanged")
        p.set_defaults(handler=name)

    def external_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", required=True,
                       help="a models/<protocol>/<set>__<clf>.skops file (or a refitted "
                            "deploy/... one)")
        p.add_argument("--cohort", required=True, help="manifest CSV (images optional for a "
                                                       "clinical model) or dataset root")
        p.add_argument("--format", default="auto", choices=COHORT_FORMATS)
        p.add_argument("--coding", metavar="YAML",
                       help="value mapping of the cohort's clinical columns, as a run "
                            "config's cohort.coding: {laterality: {'1': left, '2': right}}")
        p.add_argument("--allow-missing", action="store_true",
                       help="predict even when a model input is absent or unreadable: it is "
                            "imputed with the training value (the coverage table says for "
                            "whom); without it, such a cohort is refused")
        p.add_argument("--cache", help="image and feature cache (default "
                                       "$XDG_CACHE_HOME/pcr-workbench, ~/.cache/pcr-workbench)")
        p.add_argument("--jobs", type=_WORKERS, default=None)

    p = sub.add_parser("predict", help="apply a saved model (.skops) to a cohort, after "
                                       "checking that the cohort provides its inputs")
    external_args(p)
    p.add_argument("--out", required=True, help="CSV of probabilities (its coverage table "
                                                "is written beside it: <out>.coverage.csv)")
    p.set_defaults(handler="predict")

    p = sub.add_parser(
        "validate", help="external validation of a saved model on a cohort: discrimination, "
                         "calibration, recalibration, decision curve, transportability",
        description="Score a saved model on another cohort and write a validation folder "
                    "(metrics.csv, reliability.csv, decision_curve.csv, case_mix.csv, "
                    "coverage.csv, summary.json, report.html). Inside a run by default: "
                    "<run>/validation/<name>/, shown in the dashboard's Validation tab.")
    external_args(p)
    p.add_argument("--out", help="validation folder (default <run of the model>/validation/"
                                 "<name>)")
    p.add_argument("--name", help="validation name (default: the cohort's name)")
    p.add_argument("--run", help="development run of the model, for the case mix and the "
                                 "membership model (default: the run the model file is in)")
    p.add_argument("--n-boot", type=_at_least_one("--n-boot"), default=2000,
                   help="bootstrap replicates of the CIs (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed of bootstraps and CV (default 0)")
    p.set_defaults(handler="validate")

    p = sub.add_parser("refit", help="refit a run's model on the whole development cohort "
                                     "(for deployment; honest estimates stay those of the run)")
    p.add_argument("--model", required=True, help="a models/<protocol>/<set>__<clf>.skops "
                                                  "file of a run")
    p.add_argument("--run", help="its run directory (default: the run the file is in)")
    p.add_argument("--out", help="model file to write (default <run>/deploy/<protocol>/"
                                 "<set>__<clf>.skops)")
    p.set_defaults(handler="refit")

    p = sub.add_parser("report", help="standalone HTML report of a run directory")
    p.add_argument("run", help="run directory")
    p.add_argument("--out", default=None, help="HTML file (default <run>/report.html)")
    p.set_defaults(handler="report")

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
    p.set_defaults(handler="dashboard")

    p = sub.add_parser("table1", help="clinical characteristics by split and pCR")
    _add_cohort_args(p)
    p.add_argument("--out", required=True, help="folder for table1.csv / table1.html")
    p.add_argument("--seed", type=int, default=42, help="split seed (default 42)")
    p.add_argument("--test-size", type=float, default=0.3, help="test fraction (default 0.3)")
    p.set_defaults(handler="table1")

    p = sub.add_parser("config", help="configuration tools")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    c = csub.add_parser("check", help="validate a run config YAML")
    c.add_argument("file")
    c.set_defaults(handler="config_check")

    p = sub.add_parser("ibsi", help="IBSI-1 digital phantom conformance of the radiomics layer")
    p.add_argument("--data", metavar="DIR",
                   help="folder with digital_phantom/ and reference_values.csv (default: the "
                        "IBSI-1 data shipped with the package, see 'workbench data')")
    p.add_argument("--phantom", help="folder with image.nii.gz and mask.nii.gz (overrides --data)")
    p.add_argument("--reference", help="IBSI-1 reference values CSV (overrides --data)")
    p.add_argument("--out", help="also write ibsi_rows.csv and ibsi_report.json here")
    p.set_defaults(handler="ibsi")

    p = sub.add_parser("data", help="reference data shipped with the package: paths, licences, "
                                    "citations")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    d = dsub.add_parser("path", help="print the path of one shipped dataset, e.g. "
                                     "workbench data path ispy1_clinical")
    d.add_argument("name", help="dataset name: ibsi1 (folder) or ispy1_clinical (workbook)")
    p.set_defaults(handler="data")

    p = sub.add_parser(
        "learning-curve", help="honest repeated-CV AUC of each strategy x feature set against "
                               "cohort size, beside clinical alone, the oracle and the bound",
        description="Honest repeated-CV AUC of the config's strategies on their feature sets "
                    "and of clinical alone (study chain, lr) for each cohort size, with the "
                    "oracle and the learnable bound on synthetic cohorts. Writes "
                    "learning_curve.csv and learning_curve.html; per-size results are cached.")
    p.add_argument("--config", required=True, help="run config YAML naming the strategies "
                                                   "(strategies.names, .feature_sets)")
    p.add_argument("--sizes", required=True, nargs="+", type=int, metavar="N",
                   help="cohort sizes, e.g. 60 100 163 (each >= 4 x protocol.cv_folds)")
    p.add_argument("--out", help="output folder (default data/runs/<config name>-learning-curve)")
    p.add_argument("--run", help="finished run directory whose modelling inputs are "
                                 "subsampled (stratified, nested; default for a real cohort: "
                                 "data/runs/<config name>; a synthetic cohort without --run is "
                                 "generated and extracted per size)")
    p.add_argument("--repeats", type=_at_least_one("--repeats"), default=None,
                   help="CV repeats per size (default: the config's strategies.repeats)")
    p.add_argument("--jobs", type=_WORKERS, default=None)
    p.add_argument("--cache", help="content-addressed caches (default data/interim)")
    p.set_defaults(handler="learning_curve")

    for name, text in (("run", "run every stage of the pipeline on a config's cohort into one "
                               "run directory"),
                       ("demo", "alias of 'run' (make demo: the embedded synthetic cohort)")):
        p = sub.add_parser(name, help=text, description=text + ". Run directory layout: see "
                           "workbench.rundir (README: 'The run directory').")
        p.add_argument("--config", default=None,
                       help="run config YAML (default configs/demo.yaml in the current "
                            "folder, else in the source checkout the package runs from)")
        p.add_argument("--out", help="run directory (default data/runs/<config name>)")
        p.add_argument("--cache", help="content-addressed caches (default data/interim)")
        p.add_argument("--jobs", type=_WORKERS, default=None)
        p.add_argument("--scheduler", default=None,
                       help="Dask scheduler address for feature extraction (default: local)")
        p.add_argument("--strict", action="store_true", help=_STRICT_HELP)
        p.set_defaults(handler="run")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    # The handlers import the pipeline (scikit-learn, SimpleITK, ...): only once a command
    # runs, so that `workbench --help` stays instant.
    from workbench.cli import commands

    try:
        return int(getattr(commands, f"cmd_{args.handler}")(args) or EXIT_OK)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except WorkbenchError as exc:
        return _fail(f"error: {exc}", EXIT_USAGE, args.verbose)
    except OSError as exc:  # a file or folder the user named: missing, unwritable, a file...
        where = f": {exc.filename}" if exc.filename else ""
        return _fail(f"error: {exc.strerror or exc}{where}", EXIT_USAGE, args.verbose)
    except Exception as exc:  # a bug: say so in one line, the traceback with -v
        first = (str(exc).splitlines() or [""])[0]
        return _fail(f"internal error: {type(exc).__name__}: {first}"
                     + ("" if args.verbose else " (run with -v for the traceback)"),
                     EXIT_INTERNAL, args.verbose)


def _fail(message: str, code: int, verbose: bool) -> int:
    """Print the traceback (with ``-v``) and then the message; return ``code``."""
    if verbose:
        traceback.print_exc(file=sys.stderr)
    print(message, file=sys.stderr)
    return code

