"""``DataStore``: the dashboard's read-only view of one run directory.

Files are read once through :class:`~workbench.rundata.RunData`. Every model's ROC and
decision curve comes precomputed from ``models/curves.parquet`` and its AUC, counts and Brier
score from ``models/metrics.parquet``, so drawing a selection only selects rows. A model's
live threshold metrics need its :class:`ModelEval` (a
:class:`~workbench.evaluation.metrics.ThresholdSweep` and a bootstrap resample of the (label,
probability) pairs), prepared the first time that model is drawn (~10 ms) and kept. Moving the
threshold slider then only recounts a confusion matrix and its bootstrap intervals
(:meth:`ModelEval.at`); nothing is ever refitted. :func:`load_store` is ``pn.cache``-d, so every browser session of one server
shares one store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import panel as pn

from workbench.app.evals import LIVE_METRICS, ModelEval, ModelKey
from workbench.evaluation.curves import model_curves
from workbench.evaluation.delong import delong_test
from workbench.evaluation.display import headline_model
from workbench.evaluation.truth_display import model_rows, proxy_rows, reference_rows
from workbench.imaging.slices import TumourSlices, read_tumour_slices
from workbench.names import FEATURE_SET_NAMES, MODEL_LABELS
from workbench.plots import eval_predictions, labels_outside_titles
from workbench.rundata import RunData, RunDataError, ValidationData, validation_folders

log = logging.getLogger(__name__)

__all__ = ["EVALUATIONS", "LIVE_METRICS", "DataStore", "ModelEval", "ModelKey", "PatientImages",
           "load_store"]

#: Evaluation splits as the widgets name them → the ``split`` of the run's tables.
EVALUATIONS = {"test split": "test", "CV out-of-fold (training)": "cv"}


#: The largest tumour slice of each preprocessed phase, with the tumour mask and spacing.
PatientImages = TumourSlices


class DataStore:
    """Cached, read-only access to one run directory for the dashboard.

    Parameters
    ----------
    run_dir
        The run directory (``data/runs/<name>``); fixed for the store's lifetime.
    n_boot, seed
        Bootstrap replicates (and seed) of the live threshold-metric intervals.

    Raises
    ------
    workbench.rundir.RunDataError
        The folder, its manifest or its model tables are missing (the message names the
        file and the stage that writes it).
    """

    def __init__(self, run_dir: str | Path, *, n_boot: int = 1000, seed: int = 0) -> None:
        self.run = RunData(run_dir)
        for required in ("manifest", "metrics", "predictions"):
            self.run.load(required)
        self.n_boot, self.seed = int(n_boot), int(seed)
        self._memo: dict[tuple, Any] = {}

    def __repr__(self) -> str:
        return f"DataStore({str(self.run.run_dir)!r})"

    def cached(self, key: tuple, build: Callable[[], Any]) -> Any:
        """``build()`` once per ``key``; later calls return the same object."""
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]

    # ------------------------------------------------------------------ what the run holds
    @property
    def protocols(self) -> list[str]:
        """Protocols of the run, honest first."""
        return self.run.protocols

    @property
    def splits(self) -> list[str]:
        """Evaluated splits present (``test``, ``cv``)."""
        have = set(self.run.metrics["split"].astype(str))
        return [s for s in EVALUATIONS.values() if s in have]

    def _eval_rows(self, protocol: str, split: str) -> pd.DataFrame:
        def build() -> pd.DataFrame:
            part = eval_predictions(self.run.predictions, protocol, split)
            return part.assign(**{c: part[c].astype(str) for c in
                                  ("patient_id", "feature_set", "classifier")})
        return self.cached(("rows", protocol, split), build)

    def models(self, protocol: str, split: str) -> list[tuple[str, str]]:
        """``(feature_set, classifier)`` pairs with predictions, in table order."""
        def build() -> list[tuple[str, str]]:
            rows = self._eval_rows(protocol, split)
            pairs = zip(rows["feature_set"].tolist(), rows["classifier"].tolist(), strict=True)
            return list(dict.fromkeys(pairs))
        return list(self.cached(("models", protocol, split), build))

    def blocks(self, protocol: str) -> list[str]:
        """Signature blocks selected under ``protocol`` (``models/selection.parquet``), in
        table order; none when the run has no selection table."""
        def build() -> list[str]:
            if not self.run.exists("selection"):
                return []
            sel = self.run.selection
            rows = sel[sel["protocol"].astype(str) == protocol]
            return list(dict.fromkeys(rows["block"].astype(str).tolist()))
        return list(self.cached(("blocks", protocol), build))

    @property
    def feature_sets(self) -> list[str]:
        """Every feature set modelled, in registry order (others after, in table order)."""
        return _registry_order(self.run.metrics["feature_set"], FEATURE_SET_NAMES)

    @property
    def classifiers(self) -> list[str]:
        """Every classifier modelled, then every strategy model, in registry order (others
        after, in table order)."""
        return _registry_order(self.run.metrics["classifier"], tuple(MODEL_LABELS))

    @property
    def weights_label(self) -> str | None:
        """The deep-feature weights label, ``None`` without deep features."""
        return self.cached(("weights",), lambda: self.run.weights_label)

    @property
    def random_weights(self) -> bool:
        """Whether the deep features come from random (not pretrained) weights."""
        label = self.weights_label or ""
        return "random" in label.lower() or "not imagenet" in label.lower()

    def default_threshold(self, protocol: str) -> float:
        """The threshold the run recorded for its headline model (test split)."""
        fs, clf = headline_model(self.run.metrics)
        m = self.run.metrics
        hit = m[(m["protocol"] == protocol) & (m["feature_set"] == fs)
                & (m["classifier"] == clf) & (m["split"] == "test")]
        return float(hit["threshold"].iloc[0]) if len(hit) else 0.5

    # ------------------------------------------------------------------ precomputed curves
    @property
    def curves(self) -> dict[tuple[str, str, str, str, str], tuple[Any, Any]]:
        """``{(protocol, split, feature_set, classifier, curve): (x, y)}`` from
        ``models/curves.parquet`` (:mod:`workbench.evaluation.curves`; ``treat_all`` under
        empty feature set and classifier). A run written before that file existed gets it
        computed here once, with a log line saying so."""
        def build() -> dict:
            if self.run.exists("curves"):
                table = self.run.read("curves")
            else:
                started = time.perf_counter()
                table = model_curves(self.run.predictions)
                log.info("%s has no models/curves.parquet (written by the models stage since "
                         "it exists); computed it from the predictions in %.1f s",
                         self.run.run_dir, time.perf_counter() - started)
            keys = ["protocol", "split", "feature_set", "classifier", "curve"]
            table = table.assign(**{k: table[k].astype(str) for k in keys})
            return {tuple(k): (g["x"].to_numpy(dtype=float), g["y"].to_numpy(dtype=float))
                    for k, g in table.groupby(keys, sort=False)}
        return self.cached(("curves",), build)

    def curve(self, protocol: str, split: str, feature_set: str, classifier: str,
              kind: str) -> tuple[Any, Any] | None:
        """``(x, y)`` of one model's ``roc`` or ``net_benefit`` curve, ``None`` when it has
        none (one class evaluated, or a withheld estimate)."""
        return self.curves.get((protocol, split, str(feature_set), str(classifier), kind))

    def treat_all(self, protocol: str, split: str) -> tuple[Any, Any] | None:
        """``(threshold, net benefit)`` of treating every evaluated patient."""
        return self.curves.get((protocol, split, "", "", "treat_all"))

    def summary(self, protocol: str, split: str, feature_set: str, classifier: str
                ) -> dict[str, Any]:
        """Recorded ``n``, ``n_pos`` and ``auc`` ``(value, lo, hi)`` of one model (NaN when
        the run recorded none)."""
        nan = float("nan")
        m = self.recorded(protocol, split).get((str(feature_set), str(classifier)), {})
        return {"n": m.get("n"), "n_pos": m.get("n_pos"), "auc": m.get("auc", (nan,) * 3)}

    # ------------------------------------------------------------------ per-model numbers
    def model(self, protocol: str, split: str, feature_set: str, classifier: str) -> ModelEval:
        """The :class:`ModelEval` of one model (computed on first use, then kept)."""
        key = ModelKey(protocol, split, str(feature_set), str(classifier))

        def build() -> ModelEval:
            rows = self._eval_rows(protocol, split)
            g = rows[(rows["feature_set"] == key.feature_set)
                     & (rows["classifier"] == key.classifier)]
            if g.empty:
                raise RunDataError(f"no {split} predictions for {key.name} under the "
                                   f"{protocol} protocol", step="dashboard")
            return ModelEval(key, g["patient_id"], g["label"], g["probability"],
                             n_boot=self.n_boot, seed=self.seed)
        return self.cached(("model", *key), build)

    def prepare(self) -> int:
        """Read what every first view needs — the curves and the recorded metrics of every
        protocol and evaluation — so no session waits for it; a model's bootstrap
        (:class:`ModelEval`) is prepared when that model is first drawn. Returns the number
        of models."""
        n = 0
        self.curves  # noqa: B018 - read once, kept
        for protocol in self.protocols:
            for split in self.splits:
                self.recorded(protocol, split)
                n += len(self.models(protocol, split))
        return n

    def delong(self, protocol: str, split: str, model: tuple[str, str],
               reference: tuple[str, str]):
        """Paired DeLong test of ``model`` vs ``reference`` on their shared patients.

        Returns
        -------
        workbench.evaluation.delong.DelongTest or None
            ``None`` when they share fewer than 3 patients or one class is absent.
        """
        def build():
            a = self.model(protocol, split, *model)
            b = self.model(protocol, split, *reference)
            pa = pd.Series(a.p, index=a.patient_ids)
            pb = pd.Series(b.p, index=b.patient_ids)
            y = pd.Series(a.y, index=a.patient_ids)
            shared = pa.index.intersection(pb.index)
            ys = y.loc[shared].to_numpy()
            if len(shared) < 3 or ys.min() == ys.max():
                return None
            return delong_test(ys, pa.loc[shared].to_numpy(), pb.loc[shared].to_numpy())
        return self.cached(("delong", protocol, split, tuple(model), tuple(reference)), build)

    def recorded_metrics(self, protocol: str, split: str) -> pd.DataFrame:
        """Rows of ``models/metrics.parquet`` for one protocol and split (string columns as
        plain ``str``)."""
        def build() -> pd.DataFrame:
            m = self.run.metrics
            rows = m[(m["protocol"].astype(str) == protocol) & (m["split"].astype(str) == split)]
            return rows.assign(**{c: rows[c].astype(str) for c in
                                  ("feature_set", "classifier", "metric")})
        return self.cached(("metrics", protocol, split), build)

    def recorded(self, protocol: str, split: str) -> dict[tuple[str, str], dict[str, Any]]:
        """Recorded metrics by model: ``{(fs, clf): {"n", "n_pos", "threshold",
        <metric>: (value, lo, hi), ...}}`` — a lookup table, so tables format without pandas
        work on every widget change."""
        def build() -> dict[tuple[str, str], dict[str, Any]]:
            out: dict[tuple[str, str], dict[str, Any]] = {}
            rows = self.recorded_metrics(protocol, split)
            for r in rows.itertuples(index=False):
                entry = out.setdefault((r.feature_set, r.classifier), {})
                if "n" not in entry and pd.notna(r.n) and pd.notna(r.n_pos):
                    entry.update(n=int(r.n), n_pos=int(r.n_pos), threshold=float(r.threshold))
                entry[r.metric] = (float(r.value), float(r.lo), float(r.hi))
            return out
        return self.cached(("recorded", protocol, split), build)

    # ------------------------------------------------------------------ figures (cached)
    def figure(self, name: str, build: Callable[[], Any], *key: Any) -> Any:
        """A HoloViews figure built once per ``(name, *key)`` from the run's tables; its
        title leaves the leakage warning and the weights label to the tab's banner
        (:func:`~workbench.plots.labels_outside_titles`)."""
        def titled() -> Any:
            with labels_outside_titles():
                return build()
        return self.cached(("figure", name, *key), titled)

    # ------------------------------------------------------------------ patients
    def patient_probabilities(self, protocol: str, split: str,
                              models: Sequence[tuple[str, str]]) -> pd.DataFrame:
        """One row per evaluated patient: ``patient_id``, ``pCR`` and one probability column
        per model (``"<feature set> / <classifier>"``)."""
        def build() -> pd.DataFrame:
            cols = {}
            labels: dict[str, int] = {}
            for fs, clf in models:
                ev = self.model(protocol, split, fs, clf)
                cols[ev.key.name] = pd.Series(ev.p, index=ev.patient_ids)
                labels.update(zip(ev.patient_ids, ev.y.tolist(), strict=True))
            frame = pd.DataFrame(cols).round(3)
            frame.insert(0, "pCR", pd.Series(labels).reindex(frame.index).astype("Int64"))
            return frame.rename_axis("patient_id").reset_index().astype({"patient_id": object})
        return self.cached(("patients", protocol, split, tuple(models)), build)

    def patients(self, protocol: str, split: str) -> list[str]:
        """Patient ids evaluated under ``protocol`` / ``split`` (any model), sorted."""
        return list(self.cached(("patient_ids", protocol, split), lambda: sorted(
            dict.fromkeys(self._eval_rows(protocol, split)["patient_id"].tolist()))))

    @property
    def preprocessed(self) -> pd.DataFrame | None:
        """``preprocessed.parquet`` (image paths per patient), ``None`` when absent."""
        def build() -> pd.DataFrame | None:
            if not self.run.exists("preprocessed"):
                return None
            table = self.run.read("preprocessed")
            return table.assign(patient_id=table["patient_id"].astype(str))
        return self.cached(("preprocessed",), build)

    def images_missing(self, patient_id: str) -> str | None:
        """Why a patient's images cannot be shown, ``None`` when they can."""
        table = self.preprocessed
        if table is None:
            return ("preprocessed.parquet not found in the run directory (written by "
                    "`workbench run`; runs built from feature tables carry no images)")
        row = table[table["patient_id"] == str(patient_id)]
        if row.empty:
            return "this patient has no row in preprocessed.parquet"
        mask = row["mask"].iloc[0] if "mask" in row else None
        if not mask or not Path(str(mask)).is_file():
            return f"preprocessed mask not found ({mask}); was data/interim cleaned?"
        return None

    def patient_images(self, patient_id: str) -> PatientImages:
        """The largest tumour slice of every phase of one patient, read once.

        Raises
        ------
        workbench.rundir.RunDataError
            No images for this patient (see :meth:`images_missing`).
        """
        def build() -> PatientImages:
            if (why := self.images_missing(patient_id)) is not None:
                raise RunDataError(why, step="dashboard", patient=patient_id)
            row = self.preprocessed.set_index("patient_id").loc[str(patient_id)]
            phases = {str(col).removeprefix("image_"): row[col] for col in row.index
                      if str(col).startswith("image_") and isinstance(row[col], str)
                      and Path(row[col]).is_file()}
            return read_tumour_slices(phases, row["mask"], patient=str(patient_id))
        return self.cached(("images", str(patient_id)), build)

    def crop_png(self, patient_id: str) -> Path | None:
        """``features/crops/<patient>.png`` (the CNN input strip) when the run has it."""
        return self.run.crop_path(patient_id)

    # ------------------------------------------------------------------ known truth
    @property
    def known_truth(self) -> dict[str, pd.DataFrame] | None:
        """The run's known-truth diagnostics (``diagnostics/known_truth.csv``, synthetic
        cohorts only) as display tables — ``references``, ``proxies`` and honest ``models``
        (:mod:`workbench.evaluation.truth_display`) — read and formatted once; ``None``
        when the run has none."""
        def build() -> dict[str, pd.DataFrame] | None:
            if not self.run.has("known_truth"):
                return None
            table = self.run.load("known_truth")
            return {"references": reference_rows(table), "proxies": proxy_rows(table),
                    "models": model_rows(table, "honest")}
        return self.cached(("known_truth",), build)

    # ------------------------------------------------------------------ external validations
    @property
    def validations(self) -> list[str]:
        """Names of the run's external validations (``validation/<name>/summary.json``),
        sorted: a directory listing made once, nothing read (the Validation tab exists only
        when there is one)."""
        return list(self._validation_folders())

    def _validation_folders(self) -> dict[str, Path]:
        return self.cached(("validation_folders",),
                           lambda: validation_folders(self.run.run_dir))

    def validation(self, name: str) -> ValidationData:
        """The :class:`~workbench.rundata.ValidationData` of one validation, built once; its
        files are read when first used (the tab is opened).

        Raises
        ------
        workbench.rundir.RunDataError
            ``name`` is not a validation of this run.
        """
        folders = self._validation_folders()
        if name not in folders:
            raise RunDataError(f"no external validation {name!r} in this run; have "
                               f"{sorted(folders)}", step="dashboard")
        return self.cached(("validation", name), lambda: ValidationData(folders[name]))

    # ------------------------------------------------------------------ provenance
    def provenance(self) -> dict[str, str]:
        """Config, seed, git commit, creation time, Python, deep weights and IBSI line."""
        man = self.run.manifest
        git = man.get("git") or {}
        commit = (git.get("commit") or "not recorded") + (" (uncommitted changes)"
                                                          if git.get("dirty") else "")
        return {"Config": str((man.get("config") or {}).get("name", "?")),
                "Seed": str(man.get("seed", "?")), "Git commit": commit,
                "Created (UTC)": str(man.get("created_utc", "?")),
                "Python / platform": f"{man.get('python')} / {man.get('platform')}",
                "Deep weights": self.weights_label or "no deep features in this run",
                "IBSI": self.run.ibsi_line}

    def versions(self) -> pd.DataFrame:
        """Package versions recorded in ``run_manifest.json``."""
        packages = self.run.manifest.get("packages") or {}
        return pd.DataFrame({"package": list(packages),
                             "version": [str(v) for v in packages.values()]})

    def input_hashes(self) -> pd.DataFrame:
        """Input files and their sha256 (``missing`` when a file was absent)."""
        inputs = self.run.manifest.get("inputs") or {}
        return pd.DataFrame({"input": list(inputs),
                             "sha256": [v or "missing" for v in inputs.values()]})


@pn.cache
def _load_store(run_dir: str) -> DataStore:
    seconds = time.perf_counter()
    store = DataStore(run_dir)
    n = store.prepare()
    log.info("dashboard store of %s: %d models, read in %.1f s", run_dir, n,
             time.perf_counter() - seconds)
    return store


def load_store(run_dir: str | Path) -> DataStore:
    """The :class:`DataStore` of ``run_dir``, built once per process (curves and recorded
    metrics read, :meth:`DataStore.prepare`) and shared by every browser session
    (``pn.cache``)."""
    return _load_store(str(Path(run_dir).resolve()))


def _registry_order(values: pd.Series, registry: tuple[str, ...]) -> list[str]:
    seen = list(dict.fromkeys(values.astype(str)))
    rank = {name: i for i, name in enumerate(registry)}
    return sorted(seen, key=lambda v: (rank.get(v, len(rank)), seen.index(v)))
