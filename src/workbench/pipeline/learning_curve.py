"""Learning curve: honest repeated-CV AUC of each strategy x feature set against cohort size.

For each size ``n`` the honest protocol runs the config's non-study strategies on their
feature sets (:func:`~workbench.pipeline.settings.strategy_grid`), plus the study chain's
``lr`` on the ``clinical`` set as the clinical-only reference, with ``repeats`` repeats of
``protocol.cv_folds``-fold CV on the development split and one scored test split
(:func:`~workbench.models.protocols.run_protocol`, :func:`~workbench.evaluation.summary.evaluate`).
Where the cohort's truth is known (a synthetic cohort) each size also gets the oracle AUC
(the true probability) and the learnable bound (:mod:`workbench.evaluation.truth`) on the
same development patients, so the curves can be read against what the data allow.

The ``n`` patients of a size and their modelling inputs (stratified subsamples of a finished
run, or the synthetic generator's first ``n`` patients through the cached stages) come from
:mod:`workbench.pipeline.learning_inputs`, checked before they reach this module.

Outputs under ``out``: ``learning_curve.csv`` (:data:`LEARNING_CURVE_COLUMNS`),
``learning_curve.html`` (standalone, offline) and per size ``sizes/n<n>.csv`` with its cache
key ``sizes/n<n>.key.json`` (:mod:`workbench.pipeline.cache`: the size's features, clinical
matrix, labels and truth, the modelling settings, ``n``, ``repeats`` and the code), so a
rerun, or a rerun with another size added, refits nothing it has already fitted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from workbench.config import RunConfig
from workbench.errors import ConfigError, WorkbenchError
from workbench.evaluation.summary import evaluate
from workbench.evaluation.truth import learnable_bound, oracle_auc
from workbench.files import atomic_write_text
from workbench.models.feature_sets import FEATURE_SETS, available_blocks
from workbench.models.protocols import run_protocol
from workbench.pipeline import cache
from workbench.pipeline.diagnostics import CLINICAL_COLUMNS, LAW_DRIVERS
from workbench.pipeline.learning_inputs import SizeInputs, check_sizes, size_source
from workbench.pipeline.settings import (
    classifiers_for,
    default_run_dir,
    modelling_settings,
    protocol_settings,
    selector_factory,
    strategy_factory,
    strategy_grid,
)
from workbench.plots.learning_curve import learning_curve_plot
from workbench.report.page import Page

log = logging.getLogger(__name__)

__all__ = ["LEARNING_CURVE_COLUMNS", "default_out", "learning_curve", "learning_curve_lines",
           "size_table", "write_learning_curve_html"]

#: Columns of ``learning_curve.csv``, one row per (n, kind, feature set, classifier).
LEARNING_CURVE_COLUMNS = ("n", "kind", "feature_set", "strategy", "classifier", "auc_cv_mean",
                          "auc_cv_sd", "auc_cv_min", "auc_cv_max", "auc_test", "auc_test_lo",
                          "auc_test_hi", "repeats", "seconds", "n_used", "n_pos", "detail")
#: The clinical-only reference: the study chain's classifier on the clinical feature set.
REFERENCE = ("clinical", "lr")
#: Bootstrap draws of the threshold metrics :func:`evaluate` computes beside the AUC (the
#: AUC's CI is DeLong's; nothing here reads the threshold metrics).
N_BOOT = 200
#: Code whose change invalidates the per-size results.
CODE = (*cache.MODEL_CODE, "pipeline/learning_curve")


def default_out(cfg: RunConfig) -> Path:
    """``data/runs/<name>-learning-curve``, beside the config's run directory."""
    run = default_run_dir(cfg)
    return run.with_name(f"{run.name}-learning-curve")


# --------------------------------------------------------------------------- one size
def _pick(metrics: pd.DataFrame, metric: str, split: str) -> pd.Series | None:
    rows = metrics[(metrics["metric"] == metric) & (metrics["split"] == split)]
    return None if rows.empty else rows.iloc[0]


def _model_values(metrics: pd.DataFrame, preds: pd.DataFrame, fs: str, clf: str) -> dict:
    """The AUC columns of one model: repeated-CV mean, SD, range; test AUC with its CI."""
    m = metrics[(metrics["feature_set"] == fs) & (metrics["classifier"] == clf)]
    rep, sd = _pick(m, "auc_repeated", "cv"), _pick(m, "auc_repeated_sd", "cv")
    cv, test = _pick(m, "auc", "cv"), _pick(m, "auc", "test")
    out: dict = {}
    if rep is not None:
        out.update(auc_cv_mean=rep["value"], auc_cv_min=rep["lo"], auc_cv_max=rep["hi"],
                   auc_cv_sd=np.nan if sd is None else sd["value"])
    elif cv is not None:  # one repeat: no spread to report
        out.update(auc_cv_mean=cv["value"], auc_cv_min=cv["value"], auc_cv_max=cv["value"])
    if test is not None:
        out.update(auc_test=test["value"], auc_test_lo=test.get("lo", np.nan),
                   auc_test_hi=test.get("hi", np.nan))
    part = preds[(preds["feature_set"] == fs) & (preds["classifier"] == clf)
                 & (preds["split"] == "cv")]
    out["repeats"] = int(part["repeat"].nunique())
    return out


def _skip_reason(skipped: list[dict], features: pd.DataFrame, fs: str, clf: str) -> str:
    """Why (feature set, classifier) has no prediction: its recorded skip, or its blocks."""
    missing = sorted(set(FEATURE_SETS[fs].blocks) - set(available_blocks(features.columns)))
    if missing:
        return f"skipped: needs feature blocks {missing}, absent from the inputs"
    for d in skipped:
        if d.get("feature_set") == fs and d.get("classifier") in (clf, None):
            return f"skipped: {d.get('reason', 'no reason recorded')}"
    return "skipped: no prediction (see the log)"


def _truth_rows(truth: pd.DataFrame, split: pd.Series, *, folds: int, repeats: int,
                seed: int) -> list[dict]:
    """Oracle and learnable-bound rows on the size's development patients (the oracle also
    on its test patients), skipped with a warning when the truth cannot support them."""
    t = truth.set_index("patient_id")
    dev = t.loc[split.index[split == "train"]].reset_index()
    test = t.loc[split.index[split == "test"]].reset_index()
    rows = []
    start = time.perf_counter()
    try:
        o_dev, o_test = oracle_auc(dev), oracle_auc(test)
        rows.append({"kind": "oracle", "feature_set": "truth", "strategy": "oracle",
                     "classifier": "true probability", "auc_cv_mean": o_dev["auc"],
                     "auc_test": o_test["auc"], "auc_test_lo": o_test["lo"],
                     "auc_test_hi": o_test["hi"], "seconds": time.perf_counter() - start,
                     "detail": f"AUC of the true P(pCR) on the {len(dev)} development "
                               f"patients; test: the {len(test)} test patients (DeLong CI)"})
    except WorkbenchError as exc:
        log.warning("learning curve: no oracle at n=%d: %s", len(truth), exc)
    start = time.perf_counter()
    n_pos = int(dev["pcr"].sum())
    k = min(folds, n_pos, len(dev) - n_pos)
    try:
        bound = learnable_bound(dev, list(LAW_DRIVERS), CLINICAL_COLUMNS, folds=k,
                                repeats=repeats, seed=seed)
    except WorkbenchError as exc:
        log.warning("learning curve: no learnable bound at n=%d: %s", len(truth), exc)
        return rows
    aucs = np.asarray(bound["aucs"], dtype=float)
    rows.append({"kind": "learnable_bound", "feature_set": "truth",
                 "strategy": "learnable_bound", "classifier": "lr (true latents + subtype)",
                 "auc_cv_mean": bound["auc"],
                 "auc_cv_sd": bound["sd"] if repeats > 1 else np.nan,
                 "auc_cv_min": aucs.min(), "auc_cv_max": aucs.max(), "repeats": repeats,
                 "seconds": time.perf_counter() - start,
                 "detail": f"logistic regression on the generator's true latents + "
                           f"{', '.join(CLINICAL_COLUMNS)}, {k}-fold CV x {repeats} repeats "
                           f"on the {len(dev)} development patients"})
    return rows


def size_table(cfg: RunConfig, n: int, inputs: SizeInputs, *, repeats: int, jobs: int,
               progress: bool = False) -> pd.DataFrame:
    """The learning-curve rows of one size (:data:`LEARNING_CURVE_COLUMNS`): the honest
    protocol on ``inputs`` (strategies + the clinical reference), then the truth rows."""
    start = time.perf_counter()
    strategies, sets = strategy_grid(cfg)
    settings = protocol_settings(cfg, jobs=jobs, repeats=repeats)
    result = run_protocol("honest", inputs.features, inputs.clinical, inputs.y,
                          feature_sets=[REFERENCE[0]], classifiers=[REFERENCE[1]],
                          selector=selector_factory(cfg), make_clf=classifiers_for(cfg),
                          settings=settings, progress=progress, strategies=strategies,
                          strategy_sets=sets, make_strategy=strategy_factory(cfg))
    preds = result.predictions
    metrics = evaluate(preds, threshold_rule=cfg.protocol.threshold,
                       fixed_threshold=cfg.protocol.fixed_threshold, n_boot=N_BOOT,
                       seed=cfg.seed)
    seconds = time.perf_counter() - start
    n_dev, n_test = int((result.split == "train").sum()), int((result.split == "test").sum())
    rows = []
    for kind, fs, clf in [("clinical_reference", *REFERENCE),
                          *[("model", fs, s) for fs in sets for s in strategies]]:
        row = {"kind": kind, "feature_set": fs, "strategy": "study" if kind != "model"
               else clf, "classifier": clf, "seconds": seconds,
               **_model_values(metrics, preds, fs, clf)}
        row["detail"] = (f"honest: {settings.cv_folds}-fold CV x {row['repeats']} repeats on "
                         f"{n_dev} development patients; test split of {n_test}"
                         if np.isfinite(row.get("auc_cv_mean", np.nan))
                         else _skip_reason(result.skipped, inputs.features, fs, clf))
        rows.append(row)
    if inputs.truth is not None:
        rows += _truth_rows(inputs.truth, result.split, folds=settings.cv_folds,
                            repeats=repeats, seed=cfg.seed)
    table = pd.DataFrame(rows)
    table["n"], table["n_used"], table["n_pos"] = n, len(inputs.y), int(inputs.y.sum())
    return table.reindex(columns=list(LEARNING_CURVE_COLUMNS))


def _size_result(cfg: RunConfig, n: int, inputs: SizeInputs, *, out: Path, repeats: int,
                 jobs: int, progress: bool) -> tuple[pd.DataFrame, bool]:
    """One size's rows, reused from ``out/sizes/n<n>.csv`` when its key still matches."""
    folder = out / "sizes"
    table_file, key_file = folder / f"n{n}.csv", folder / f"n{n}.key.json"
    frames = [inputs.features, inputs.clinical, inputs.y]
    frames += [] if inputs.truth is None else [inputs.truth]
    key = cache.stage_key(frames, {**modelling_settings(cfg), "learning_curve": {
        "n": n, "repeats": repeats, "reference": list(REFERENCE), "n_boot": N_BOOT}}, CODE)
    record = cache.is_current(key_file, key, [table_file])
    if record is not None:
        log.info("learning curve: n=%d: inputs, settings and code unchanged; reusing %s "
                 "(fitted in %.0f s)", n, table_file, float(record.get("seconds", 0.0)))
        return pd.read_csv(table_file), True
    folder.mkdir(parents=True, exist_ok=True)
    cache.invalidate(key_file)
    start = time.perf_counter()
    table = size_table(cfg, n, inputs, repeats=repeats, jobs=jobs, progress=progress)
    atomic_write_text(table_file, table.to_csv(index=False))
    cache.mark_done(key_file, key, n=n, seconds=round(time.perf_counter() - start, 1))
    return table, False


# --------------------------------------------------------------------------- the curve
def learning_curve(cfg: RunConfig, sizes: Sequence[int], *, out: str | Path,
                   repeats: int | None = None, jobs: int | None = None, progress: bool = True,
                   cache_dir: str | Path | None = None,
                   base_run: str | Path | None = None) -> pd.DataFrame:
    """Honest repeated-CV AUC per strategy x feature set against cohort size (module doc).

    Parameters
    ----------
    cfg
        The run config: its strategies and their feature sets, protocol, seed and cohort.
    sizes
        Cohort sizes ``n`` (distinct, each at least ``4 * protocol.cv_folds``).
    out
        Output folder: ``learning_curve.csv``, ``learning_curve.html``, ``sizes/`` and, for
        a synthetic cohort, the per-size run directories ``n<n>/``.
    repeats
        CV repeats per size (default ``strategies.repeats``).
    jobs
        Parallel workers (default ``cfg.jobs``).
    progress
        A tqdm bar over the sizes (``learning curve``), the stage and modelling bars below.
    cache_dir
        Content-addressed caches of the synthetic path (default ``data/interim``).
    base_run
        A finished run directory to subsample (default for a real cohort: the config's run
        directory ``data/runs/<name>``); given with a synthetic config, its features are
        subsampled instead of generating and extracting.

    Returns
    -------
    pandas.DataFrame
        The table of :data:`LEARNING_CURVE_COLUMNS`; ``attrs``: ``csv``, ``html``,
        ``cached_sizes`` (sizes reused from an earlier call), ``seconds``.

    Raises
    ------
    ConfigError
        Before any modelling: bad sizes or repeats, no non-study strategy in the config, a
        size above a real cohort (or the base run), a size with fewer than 2 x cv_folds
        patients of a class, ``out`` an existing file.
    SelectionError
        A ``strategies.prespecified`` or ``strategies.unpenalised`` entry matches no column
        (:func:`~workbench.pipeline.models.check_strategy_inputs`): on a base run before
        anything is written; on a synthetic cohort once a size's features exist, before
        it is modelled.
    """
    start = time.perf_counter()
    repeats = cfg.strategies.repeats if repeats is None else repeats
    if isinstance(repeats, bool) or not isinstance(repeats, int | np.integer) or repeats < 1:
        raise ConfigError(f"--repeats must be a whole number >= 1; got {repeats!r}",
                          step="learning curve")
    strategies, sets = strategy_grid(cfg)
    if not strategies:
        raise ConfigError(f"strategies.names of {cfg.source or 'the config'} lists no "
                          f"strategy beside the study chain ({list(cfg.strategies.names)}): "
                          "add cluster, stability, elasticnet or prespecified (and "
                          "strategies.feature_sets) to draw imaging curves",
                          step="learning curve", path=cfg.source)
    sizes = check_sizes(sizes, cfg.protocol.cv_folds)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is an existing file, not a folder",
                          step="learning curve")
    jobs = jobs or cfg.jobs
    # checks the base inputs before anything is written (a subsample: the strategies'
    # column names too, so a typo fails fast); each size's inputs come back checked
    source = size_source(cfg, sizes, out=out, base_run=base_run, cache_dir=cache_dir,
                         jobs=jobs, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    tables, cached, label = [], [], None
    with source.session(), tqdm(total=len(sizes), desc="learning curve", unit="size",
                                disable=not progress) as bar:
        for n in sizes:
            bar.set_postfix(n=n)
            inputs = source.inputs(n)
            table, reused = _size_result(cfg, n, inputs, out=out, repeats=repeats, jobs=jobs,
                                         progress=progress)
            tables.append(table.reindex(columns=list(LEARNING_CURVE_COLUMNS)))
            cached += [n] if reused else []
            label = label or inputs.weights_label
            bar.update()
    table = pd.concat(tables, ignore_index=True)
    csv = atomic_write_text(out / "learning_curve.csv", table.to_csv(index=False))
    html = write_learning_curve_html(table, out / "learning_curve.html",
                                     title=f"Learning curve — {cfg.name}", weights_label=label)
    table.attrs.update(csv=str(csv), html=str(html), cached_sizes=cached,
                       seconds=time.perf_counter() - start)
    for line in learning_curve_lines(table):
        log.info(line)
    return table


# --------------------------------------------------------------------------- outputs
def _mean_sd(row: pd.Series) -> str:
    mean, sd = row.get("auc_cv_mean", np.nan), row.get("auc_cv_sd", np.nan)
    if not np.isfinite(mean):
        return "-"
    return f"{mean:.3f}" + (f" ± {sd:.3f}" if np.isfinite(sd) else "")


def _from(flags: dict[int, bool]) -> int | None:
    """The smallest size from which every larger size tried is flagged, or None."""
    first = None
    for n in sorted(flags, reverse=True):
        if not flags[n]:
            break
        first = n
    return first


def learning_curve_lines(table: pd.DataFrame) -> list[str]:
    """Summary lines: per size the clinical reference, the best imaging model, the oracle
    and the bound (repeated-CV AUC); then from which size on imaging beats clinical alone
    (its mean, and every repeat above the reference's best repeat)."""
    lines, above, clear = [], {}, {}
    for n, part in table.groupby("n", sort=True):
        first = {kind: rows for kind, rows in part.groupby("kind", sort=False)}
        clin = first.get("clinical_reference")
        clin = None if clin is None or clin.empty else clin.iloc[0]
        models = first.get("model", part.iloc[0:0])
        models = models[np.isfinite(models["auc_cv_mean"].astype(float))]
        text = [f"n={n} ({part['n_pos'].iloc[0]} pCR): clinical reference "
                f"{'-' if clin is None else _mean_sd(clin)}"]
        if len(models):
            best = models.loc[models["auc_cv_mean"].astype(float).idxmax()]
            text.append(f"best imaging {best['feature_set']}/{best['classifier']} "
                        f"{_mean_sd(best)} (repeats {best['auc_cv_min']:.3f}-"
                        f"{best['auc_cv_max']:.3f})")
            if clin is not None and np.isfinite(clin["auc_cv_mean"]):
                above[n] = bool(best["auc_cv_mean"] > clin["auc_cv_mean"])
                clear[n] = bool(best["auc_cv_min"] > clin["auc_cv_max"])
        for kind, name in (("oracle", "oracle"), ("learnable_bound", "learnable bound")):
            if kind in first:
                text.append(f"{name} {_mean_sd(first[kind].iloc[0])}")
        lines.append("; ".join(text))
    if not above:
        return lines
    start, sure = _from(above), _from(clear)
    if start is not None:
        lines.append(f"imaging beats the clinical reference (repeated-CV AUC) from n={start} "
                     "on; with every repeat above the reference's best: "
                     + (f"from n={sure} on" if sure is not None
                        else "not at the largest size tried"))
    elif any(above.values()):
        lines.append(f"imaging beats the clinical reference (repeated-CV AUC) at n="
                     f"{[n for n, a in above.items() if a]}, but not at the largest size "
                     f"tried (n={max(above)})")
    else:
        lines.append("imaging does not beat the clinical reference (repeated-CV AUC) at any "
                     "size tried")
    return lines


def write_learning_curve_html(table: pd.DataFrame, path: Path, *, title: str,
                              weights_label: str | None = None) -> Path:
    """A standalone page (Bokeh inline, works offline): the CV and test figures, the
    summary lines and the table."""
    page = Page(weights_label)
    page.heading(title, level=1)
    page.para("Honest protocol only. Each line is a strategy on a feature set; the clinical "
              "reference is the study chain's logistic regression on the clinical columns. "
              "Oracle and learnable bound (synthetic cohorts) are computed on the same "
              "development patients.")
    for line in learning_curve_lines(table):
        page.para(line)

    def figures() -> None:
        page.figure(learning_curve_plot(table, split="cv", weights_label=weights_label),
                    caption="Repeated-CV AUC on the development split: mean over repeats, "
                            "bars from the lowest to the highest repeat.")
        page.figure(learning_curve_plot(table, split="test", weights_label=weights_label),
                    caption="The single 30 % test split: AUC with DeLong 95% CI (noisy at "
                            "small n).")

    page.section("Figures", figures)
    page.section("Table", lambda: page.table(table))
    return atomic_write_text(path, page.render(title))
