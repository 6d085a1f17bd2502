"""``DashboardState``: every choice a dashboard user can make, as ``param`` parameters.

One instance per browser session. Widgets are generated from these parameters
(``pn.widgets.X.from_param``), views depend on them (``param.depends``), and tests drive the
app by setting them — no widget or browser needed. No parameter accepts a file path: the run
directory is fixed when the store is built.
"""

from __future__ import annotations

import param

from workbench.app.store import EVALUATIONS, DataStore
from workbench.evaluation.display import default_selection
from workbench.names import FEATURE_SETS, NETWORK_NAMES
from workbench.plots import model_name

__all__ = ["DashboardState", "blocks_of"]


def blocks_of(feature_sets: list[str], available: list[str]) -> list[str]:
    """Selection blocks (``radiomics``, ``resnet50``, ...) used by ``feature_sets``, among
    ``available``: radiomics, kinetic, then the networks in registry order, then any other."""
    wanted: set[str] = set()
    for fs in feature_sets:
        spec = FEATURE_SETS.get(fs)
        wanted |= set(spec.blocks) if spec is not None else {fs}
    order = {b: i for i, b in enumerate(("radiomics", "kinetic", *NETWORK_NAMES))}
    return sorted((b for b in available if b in wanted), key=lambda b: order.get(b, len(order)))


def _model_name(feature_set: str, classifier: str) -> str:
    return model_name(feature_set, classifier)


class DashboardState(param.Parameterized):
    """What the dashboard shows.

    Parameters
    ----------
    protocol
        ``honest`` (nested CV, selection inside the folds) or ``paper`` (the study's leaky
        order), when the run has it.
    evaluation
        ``test`` (held-out split) or ``cv`` (out-of-fold predictions of the training split).
    feature_sets, classifiers
        The models drawn: every modelled pair of a chosen feature set and classifier. The
        default (:func:`~workbench.evaluation.display.default_selection`, told by
        :attr:`default_note`) is the clinical reference and each family's best feature set
        under one classifier, chosen on honest cross-validated AUC.
    threshold
        Decision threshold (``p >= threshold`` predicts pCR) of the live threshold metrics,
        the confusion matrix and the decision-curve marker.
    reference
        Model (``"<feature set> / <classifier>"``) the others are DeLong-tested against; its
        confusion matrix, calibration and SHAP values are shown.
    patient
        Patient shown in the Patients and Explain tabs.
    block
        Signature block (``radiomics``, ``resnet50``, ...) of the drawn feature sets whose
        selection the Signatures tab details (one at a time: a deep fusion set has seven).
    validation
        External validation (``workbench validate``, stored under ``validation/<name>/``)
        shown in the Validation tab; ``None`` when the run has none.
    """

    protocol = param.Selector(default="honest", objects=["honest"], doc="modelling protocol")
    evaluation = param.Selector(default="test", objects=EVALUATIONS,
                                doc="which predictions are evaluated")
    feature_sets = param.ListSelector(default=[], objects=[], doc="feature sets drawn")
    classifiers = param.ListSelector(default=[], objects=[], doc="classifiers drawn")
    threshold = param.Number(default=0.5, bounds=(0.0, 1.0), step=0.01,
                             doc="decision threshold: p >= threshold predicts pCR")
    reference = param.Selector(default=None, objects=[], allow_None=True,
                               doc="reference model of the DeLong tests")
    patient = param.Selector(default=None, objects=[], allow_None=True,
                             doc="patient shown in the Patients and Explain tabs")
    block = param.Selector(default=None, objects=[], allow_None=True,
                           doc="signature block detailed in the Signatures tab")
    validation = param.Selector(default=None, objects=[], allow_None=True,
                                doc="external validation shown in the Validation tab")

    def __init__(self, store: DataStore, **params) -> None:
        super().__init__()
        self._store = store
        self.param.protocol.objects = store.protocols
        self.param.evaluation.objects = {k: v for k, v in EVALUATIONS.items()
                                         if v in store.splits}
        self.param.feature_sets.objects = store.feature_sets
        self.param.classifiers.objects = store.classifiers
        self.param.validation.objects = store.validations
        sets, clfs, self.default_note = default_selection(store.run.metrics)
        self._default_models = {"feature_sets": sets, "classifiers": clfs}
        defaults = {
            "protocol": store.protocols[0],
            "evaluation": "test" if "test" in store.splits else store.splits[0],
            **self._default_models,
            "threshold": round(store.default_threshold(store.protocols[0]), 2),
            "validation": store.validations[0] if store.validations else None,
        }
        self.param.update(**{**defaults, **params})
        self._sync_choices()

    def show_default_models(self) -> None:
        """Back to the default feature sets and classifiers (see :attr:`default_note`)."""
        self.param.update(**{k: list(v) for k, v in self._default_models.items()})

    def show_all(self, what: str) -> None:
        """Tick every feature set (``what="feature_sets"``) or classifier
        (``"classifiers"``)."""
        setattr(self, what, list(self.param[what].objects))

    @property
    def store(self) -> DataStore:
        """The run's :class:`~workbench.app.store.DataStore` (shared, read-only)."""
        return self._store

    @property
    def models(self) -> list[tuple[str, str]]:
        """``(feature_set, classifier)`` pairs drawn: chosen and modelled under the current
        protocol and evaluation, in the run's order."""
        fs, clf = set(self.feature_sets), set(self.classifiers)
        return [m for m in self._store.models(self.protocol, self.evaluation)
                if m[0] in fs and m[1] in clf]

    @property
    def model_names(self) -> dict[str, tuple[str, str]]:
        """``"<feature set> / <classifier>"`` → pair, for :attr:`models`."""
        return {_model_name(*m): m for m in self.models}

    @property
    def reference_model(self) -> tuple[str, str] | None:
        """The reference as a ``(feature_set, classifier)`` pair, ``None`` without models."""
        return self.model_names.get(self.reference) if self.reference else None

    @property
    def is_paper(self) -> bool:
        """Whether the current numbers come from the leaky paper protocol."""
        return self.protocol == "paper"

    @param.depends("protocol", "evaluation", "feature_sets", "classifiers", watch=True)
    def _sync_choices(self) -> None:
        """Keep ``reference`` among the drawn models, ``patient`` among the evaluated
        patients and ``block`` among the drawn blocks (keeping the current choice when it is
        still valid)."""
        for name, choices in (("reference", list(self.model_names)),
                              ("patient", self._store.patients(self.protocol, self.evaluation)),
                              ("block", self.blocks)):
            now = [o for o in self.param[name].objects if o is not None]
            if now != choices:  # unchanged: no widget update
                self.param[name].objects = choices
            if getattr(self, name) not in choices:
                setattr(self, name, choices[0] if choices else None)

    @property
    def blocks(self) -> list[str]:
        """Signature blocks of the drawn feature sets under the protocol, in the run's
        order (:func:`blocks_of`)."""
        return blocks_of(self.feature_sets, self._store.blocks(self.protocol))
