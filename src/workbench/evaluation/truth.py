"""Known-truth diagnostics of a synthetic cohort: how far a run's models are from what the
data allow, and which features track the generator's hidden variables.

A synthetic cohort knows what no real one does: every patient's true probability of pCR and
the latent variables that drive it (``truth.csv`` of :mod:`workbench.cohort.synthetic`).
Three reference AUCs follow from it, from the top down:

* **oracle** — the AUC of the true probability itself (:func:`oracle_auc`). No model of any
  data can beat it in expectation: the labels are Bernoulli draws of that probability.
* **learnable bound** — a logistic regression on the *true* latent drivers plus the clinical
  covariates, cross-validated on the cohort (:func:`learnable_bound`): what a model that had
  measured the drivers perfectly would reach with this many patients.
* **clinical reference** — the same cross-validation on the clinical covariates alone.

A model's place between the last two is :func:`gap_closed`: 0 means it adds nothing to the
clinical covariates, 1 means its images gave it everything the true latents would.
:func:`latent_proxies` says which feature (of any block) follows each latent most closely
(Spearman's rho), so a low score can be traced to a driver no feature measures.
:func:`known_truth_table` puts it all in one tidy table for the run directory.

Everything here is pure: tables in, tables (or dicts) out. Which columns are the latent
drivers is the caller's knowledge (the generator's law), passed as ``latents``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from workbench.errors import WorkbenchError
from workbench.evaluation.delong import delong_auc_ci

__all__ = ["KNOWN_TRUTH_COLUMNS", "KNOWN_TRUTH_KINDS", "TruthError", "feature_block",
           "gap_closed", "known_truth_table", "latent_proxies", "learnable_bound",
           "oracle_auc"]

#: Row kinds of :func:`known_truth_table`, in table order.
KNOWN_TRUTH_KINDS = ("oracle", "learnable_bound", "clinical_reference", "proxy",
                     "proxy_block", "model")
#: Columns of :func:`known_truth_table`.
KNOWN_TRUTH_COLUMNS = ("kind", "name", "protocol", "split", "metric", "feature_set",
                       "classifier", "auc", "lo", "hi", "sd", "n", "gap_closed", "latent",
                       "block", "feature", "rho", "abs_rho", "detail")
#: Block of a column with no ``<block>__`` prefix.
NO_BLOCK = "other"
#: Block name of the best feature over every block.
ALL_BLOCKS = "all"


class TruthError(WorkbenchError):
    """A truth table lacks a column, a class, or shares no patient with the features."""


def feature_block(column: str) -> str:
    """``rad__original_firstorder_Mean`` -> ``rad``; a column without ``__`` -> ``other``."""
    head, sep, _ = str(column).partition("__")
    return head if sep else NO_BLOCK


def _require(truth: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in truth.columns]
    if missing:
        raise TruthError(f"the truth table lacks {what} column(s) {missing}; it has "
                         f"{list(truth.columns)[:20]}", step="known truth")


def _labels(truth: pd.DataFrame) -> np.ndarray:
    _require(truth, ["pcr"], "label")
    y = pd.to_numeric(truth["pcr"], errors="coerce").to_numpy(dtype=float)
    if np.isnan(y).any() or not np.isin(y, (0.0, 1.0)).all():
        raise TruthError("truth column 'pcr' must be 0/1 for every patient",
                         step="known truth")
    if len(np.unique(y)) < 2:
        raise TruthError(f"truth column 'pcr' has one class only ({len(y)} patients)",
                         step="known truth")
    return y.astype(int)


def _ranked(values: np.ndarray) -> np.ndarray:
    """Column ranks (ties: average), centred and scaled to unit norm; a constant column
    becomes NaN (no correlation defined)."""
    r = rankdata(values, axis=0)
    r -= r.mean(axis=0)
    norm = np.sqrt((r * r).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, r / np.where(norm > 0, norm, 1.0), np.nan)


def latent_proxies(truth: pd.DataFrame, features: pd.DataFrame,
                   latents: Sequence[str]) -> pd.DataFrame:
    """The feature most rank-correlated with each latent driver, overall and per block.

    Spearman's rho of every (latent, feature) pair over the patients both tables hold, in one
    matrix product of centred, unit-norm ranks (10,000 features x 163 patients: a few
    milliseconds). Features with a missing value among those patients, and constant ones,
    are left out (their count is in ``attrs["skipped_features"]``).

    Parameters
    ----------
    truth
        One row per patient: ``patient_id`` and the ``latents`` columns.
    features
        One row per patient, indexed by patient id; numeric columns named
        ``<block>__<name>`` (``rad__``, ``kin__``, ``dl_resnet50__``...); others are ignored.
    latents
        Columns of ``truth`` to find proxies for.

    Returns
    -------
    pandas.DataFrame
        Columns ``latent, block, best_feature, rho, abs_rho, n, n_features``: per latent,
        first the best over every block (``block == "all"``), then the best of each block
        (blocks in column order). ``n`` is the number of shared patients, ``n_features``
        the number of features compared.

    Raises
    ------
    TruthError
        A latent column is missing, or fewer than 3 patients are shared.
    """
    _require(truth, ["patient_id", *latents], "latent")
    lat = truth.assign(patient_id=truth["patient_id"].astype(str)).set_index("patient_id")
    feats = features.copy()
    feats.index = feats.index.astype(str)
    common = lat.index.intersection(feats.index)
    if len(common) < 3:
        raise TruthError(f"the truth table and the features share {len(common)} patients "
                         "(at least 3 needed)", step="known truth")
    numeric = feats.loc[common].select_dtypes(include="number")
    x = numeric.to_numpy(dtype=float)
    usable = np.isfinite(x).all(axis=0)
    zx = _ranked(x[:, usable])
    usable_idx = np.flatnonzero(usable)
    keep = ~np.isnan(zx).any(axis=0)  # constant columns
    zx, cols = zx[:, keep], numeric.columns[usable_idx[keep]]
    zl = _ranked(lat.loc[common, list(latents)].to_numpy(dtype=float))
    rho = zx.T @ zl  # features x latents
    blocks = np.asarray([feature_block(c) for c in cols], dtype=object)
    order = list(dict.fromkeys(blocks))
    rows = []
    for j, latent in enumerate(latents):
        col = rho[:, j]
        if np.isnan(col).all() or not len(col):  # a constant latent: nothing to rank
            rows.append({"latent": latent, "block": ALL_BLOCKS, "best_feature": None,
                         "rho": np.nan, "abs_rho": np.nan, "n": len(common),
                         "n_features": len(cols)})
            continue
        a = np.abs(col)
        for block in (ALL_BLOCKS, *order):
            in_block = np.ones(len(cols), bool) if block == ALL_BLOCKS else blocks == block
            i = np.flatnonzero(in_block)[np.argmax(a[in_block])]
            rows.append({"latent": latent, "block": block, "best_feature": str(cols[i]),
                         "rho": float(col[i]), "abs_rho": float(a[i]), "n": len(common),
                         "n_features": int(in_block.sum())})
    out = pd.DataFrame(rows, columns=["latent", "block", "best_feature", "rho", "abs_rho",
                                      "n", "n_features"])
    out.attrs["skipped_features"] = int(numeric.shape[1] - len(cols))
    return out


def oracle_auc(truth: pd.DataFrame, alpha: float = 0.05) -> dict:
    """ROC AUC of the true probability against the drawn pCR labels, with DeLong's CI.

    Returns
    -------
    dict
        ``auc, lo, hi, se, n, n_pos``.
    """
    _require(truth, ["true_probability"], "probability")
    y = _labels(truth)
    p = truth["true_probability"].to_numpy(dtype=float)
    ci = delong_auc_ci(y, p, alpha)
    return {"auc": ci.auc, "lo": ci.lo, "hi": ci.hi, "se": ci.se, "n": int(len(y)),
            "n_pos": int(y.sum())}


def _design(truth: pd.DataFrame, numeric: Sequence[str],
            categorical: Sequence[str]) -> np.ndarray:
    """Numeric columns as they are, categorical ones one-hot (every level: the L2 penalty
    makes the full coding identifiable)."""
    parts = [truth[list(numeric)].astype(float)] if numeric else []
    for col in categorical:
        parts.append(pd.get_dummies(truth[col].astype(str), prefix=col, dtype=float))
    if not parts:
        raise TruthError("no column to fit the bound on", step="known truth")
    return pd.concat(parts, axis=1).to_numpy(dtype=float)


def _repeated_cv_auc(x: np.ndarray, y: np.ndarray, *, folds: int, repeats: int, seed: int,
                     c: float) -> np.ndarray:
    """Per-repeat AUC of the out-of-fold probabilities pooled over the folds."""
    aucs = np.empty(repeats)
    for r in range(repeats):
        oof = np.empty(len(y))
        cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed + r)
        for train, test in cv.split(x, y):
            model = make_pipeline(StandardScaler(),
                                  LogisticRegression(C=c, solver="lbfgs", max_iter=5000))
            model.fit(x[train], y[train])
            oof[test] = model.predict_proba(x[test])[:, 1]
        aucs[r] = roc_auc_score(y, oof)
    return aucs


def learnable_bound(truth: pd.DataFrame, latents: Sequence[str],
                    clinical_columns: Sequence[str] = ("subtype",), folds: int = 5,
                    repeats: int = 10, seed: int = 0, *, c: float = 1.0) -> dict:
    """Cross-validated AUC of a logistic regression on the true latents + clinical columns,
    and of the clinical columns alone (the clinical reference).

    Standardised inputs, L2 penalty ``C = c`` (modest: 1.0), lbfgs, no class weights;
    categorical clinical columns one-hot. Stratified ``folds``-fold CV repeated ``repeats``
    times (repeat ``r`` shuffles with seed ``seed + r``); each repeat's AUC is that of its
    out-of-fold probabilities pooled over the folds. Both fits use the same splits.

    Feed the latents in the form the generator's law uses (e.g. the log of a variable the
    law takes the log of): the bound is then the well-specified model.

    Returns
    -------
    dict
        ``auc, sd`` (mean and SD over repeats, latents + clinical), ``clinical_auc,
        clinical_sd`` (clinical alone), ``aucs, clinical_aucs`` (per repeat), ``n, n_pos,
        folds, repeats, seed, c, latents, clinical_columns``.
    """
    _require(truth, [*latents, *clinical_columns], "latent or clinical")
    if folds < 2 or repeats < 1:
        raise TruthError(f"folds must be >= 2 and repeats >= 1, got {folds} and {repeats}",
                         step="known truth")
    y = _labels(truth)
    if min(y.sum(), len(y) - y.sum()) < folds:
        raise TruthError(f"{folds}-fold stratified CV needs {folds} patients of each class; "
                         f"got {int(y.sum())} pCR of {len(y)}", step="known truth")
    kw = {"folds": folds, "repeats": repeats, "seed": seed, "c": c}
    full = _repeated_cv_auc(_design(truth, latents, clinical_columns), y, **kw)
    clinical = (_repeated_cv_auc(_design(truth, (), clinical_columns), y, **kw)
                if clinical_columns else np.full(repeats, 0.5))
    return {"auc": float(full.mean()), "sd": float(full.std(ddof=1)) if repeats > 1 else 0.0,
            "clinical_auc": float(clinical.mean()),
            "clinical_sd": float(clinical.std(ddof=1)) if repeats > 1 else 0.0,
            "aucs": full.tolist(), "clinical_aucs": clinical.tolist(), "n": int(len(y)),
            "n_pos": int(y.sum()), "folds": folds, "repeats": repeats, "seed": seed, "c": c,
            "latents": list(latents), "clinical_columns": list(clinical_columns)}


def gap_closed(auc: float, clinical_auc: float, bound_auc: float) -> float:
    """Fraction of the learnable gap a model closes:
    ``(auc - clinical_auc) / (bound_auc - clinical_auc)``.

    0: no better than the clinical reference; 1: as good as a model of the true latents;
    negative: worse than the clinical reference; above 1: better than the bound (chance on
    a small split, or leakage). NaN when an input is missing or the gap is not positive
    (the latents add nothing over the clinical covariates: there is nothing to close).
    """
    values = np.asarray([auc, clinical_auc, bound_auc], dtype=float)
    gap = values[2] - values[1]
    if not np.isfinite(values).all() or gap <= 0:
        return float("nan")
    return float((values[0] - values[1]) / gap)


def _model_rows(metrics: pd.DataFrame | None, protocols: Sequence[str],
                clinical_auc: float, bound_auc: float) -> list[dict]:
    if metrics is None or metrics.empty:
        return []
    m = metrics.assign(**{k: metrics[k].astype(str)
                          for k in ("protocol", "split", "metric", "feature_set", "classifier")})
    pick = (m["protocol"].isin(list(protocols))
            & (((m["metric"] == "auc") & m["split"].isin(["cv", "test"]))
               | (m["metric"] == "auc_repeated")))
    # repeated CV records its SD over repeats as a metric of its own
    sds = m[m["protocol"].isin(list(protocols)) & (m["metric"] == "auc_repeated_sd")]
    sd_of = {(r.protocol, r.split, r.feature_set, r.classifier): float(r.value)
             for r in sds.itertuples(index=False)}
    rows = []
    for r in m[pick].itertuples(index=False):
        auc = float(r.value)
        row = {"kind": "model", "name": f"{r.feature_set} / {r.classifier}",
               "protocol": r.protocol, "split": r.split, "metric": r.metric,
               "feature_set": r.feature_set, "classifier": r.classifier, "auc": auc,
               "lo": float(getattr(r, "lo", np.nan)), "hi": float(getattr(r, "hi", np.nan)),
               "n": getattr(r, "n", np.nan),
               "gap_closed": gap_closed(auc, clinical_auc, bound_auc)}
        if r.metric == "auc_repeated":
            row["sd"] = sd_of.get((r.protocol, r.split, r.feature_set, r.classifier), np.nan)
            method = getattr(r, "method", None)
            row["detail"] = None if method is None or pd.isna(method) else str(method)
        rows.append(row)
    return rows


def known_truth_table(truth: pd.DataFrame, features: pd.DataFrame | None,
                      metrics: pd.DataFrame | None, *, latents: Sequence[str],
                      clinical_columns: Sequence[str] = ("subtype",), folds: int = 5,
                      repeats: int = 10, seed: int = 0,
                      protocols: Sequence[str] = ("honest",)) -> pd.DataFrame:
    """One tidy table of the known-truth diagnostics (:data:`KNOWN_TRUTH_COLUMNS`).

    Rows, by ``kind``:

    * ``oracle`` — :func:`oracle_auc` (``auc, lo, hi`` with DeLong's CI, ``n``);
    * ``learnable_bound`` and ``clinical_reference`` — :func:`learnable_bound` (``auc`` is
      the mean over repeats, ``sd`` its SD; ``gap_closed`` 1 and 0 by definition);
    * ``proxy`` — per latent, its best feature over every block (``latent, block,
      feature, rho, abs_rho, n``); ``proxy_block`` — the best of each block;
    * ``model`` — each model of ``metrics`` under ``protocols`` (default: honest only):
      its recorded AUC (``metric == "auc"``, splits ``cv`` and ``test``, and any
      ``auc_repeated`` rows: ``lo``/``hi`` as recorded, the range over repeats, ``sd`` from
      ``auc_repeated_sd``) with ``gap_closed`` against the bound and the clinical reference.

    The references are cross-validated on every patient of ``truth``; a run's ``cv`` AUCs
    come from its training split and its ``test`` AUCs from a smaller split, so read the
    gap fractions as approximate (a test AUC above the bound is possible by chance).
    ``features`` ``None`` (or empty) gives no proxy rows; ``metrics`` ``None`` no model rows.
    """
    rows: list[dict] = []
    oracle = oracle_auc(truth)
    rows.append({"kind": "oracle", "name": "true probability", "auc": oracle["auc"],
                 "lo": oracle["lo"], "hi": oracle["hi"], "n": oracle["n"],
                 "detail": f"DeLong 95% CI; {oracle['n_pos']} pCR of {oracle['n']}"})
    bound = learnable_bound(truth, latents, clinical_columns, folds, repeats, seed)
    cv = (f"logistic regression (standardised, L2 C={bound['c']:g}), stratified "
          f"{folds}-fold CV x {repeats} repeats; mean and SD of per-repeat AUC")
    clin = ", ".join(clinical_columns) or "none"
    rows.append({"kind": "learnable_bound", "name": f"true latents + {clin}",
                 "auc": bound["auc"], "sd": bound["sd"], "n": bound["n"], "gap_closed": 1.0,
                 "detail": f"{cv}; latents: {', '.join(latents)}"})
    rows.append({"kind": "clinical_reference", "name": clin, "auc": bound["clinical_auc"],
                 "sd": bound["clinical_sd"], "n": bound["n"], "gap_closed": 0.0,
                 "detail": cv})
    if features is not None and not features.empty:
        proxies = latent_proxies(truth, features, latents)
        for r in proxies.itertuples(index=False):
            rows.append({"kind": "proxy" if r.block == ALL_BLOCKS else "proxy_block",
                         "name": r.latent, "latent": r.latent, "block": r.block,
                         "feature": r.best_feature, "rho": r.rho, "abs_rho": r.abs_rho,
                         "n": r.n, "detail": f"Spearman rho over {r.n_features} features"})
    rows += _model_rows(metrics, protocols, bound["clinical_auc"], bound["auc"])
    out = pd.DataFrame(rows).reindex(columns=list(KNOWN_TRUTH_COLUMNS))
    out["n"] = pd.to_numeric(out["n"], errors="coerce").astype("Int64")
    return out
