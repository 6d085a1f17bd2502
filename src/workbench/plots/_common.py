"""Shared helpers of the plot functions: titles that carry warnings, model names, filters.

Every figure showing ``paper`` protocol numbers carries :data:`PAPER_TITLE_WARNING` in its
title (the full :data:`~workbench.names.LEAKAGE_WARNING` goes in report captions);
every figure built on deep features carries the weights label it is given.
"""

from __future__ import annotations

import contextlib
import contextvars
import textwrap
from collections.abc import Iterable, Iterator, Sequence

import holoviews as hv
import pandas as pd

from workbench.errors import WorkbenchError
from workbench.names import FEATURE_SETS, NETWORK_NAMES

hv.renderer("bokeh")  # loads the bokeh backend, so its options (tools, cmap...) validate

#: Short form of the leakage warning, for figure titles.
PAPER_TITLE_WARNING = ("PAPER PROTOCOL — selection saw the test patients: "
                       "leaky, optimistic numbers")

TITLE_WIDTH = 90  # characters per title line (Bokeh titles do not wrap by themselves)

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")


class PlotInputError(WorkbenchError, ValueError):
    """A table handed to a plot function lacks what the figure needs."""


def deep_feature_sets() -> frozenset[str]:
    """Names of the feature sets that use deep (CNN) features."""
    nets = set(NETWORK_NAMES)
    return frozenset(name for name, fs in FEATURE_SETS.items() if nets & set(fs.blocks))


def uses_deep(feature_sets: str | Iterable[str]) -> bool:
    """Whether any of ``feature_sets`` (or blocks, e.g. ``"resnet50"``) is built on deep
    features."""
    names = [feature_sets] if isinstance(feature_sets, str) else list(feature_sets)
    deep = deep_feature_sets() | set(NETWORK_NAMES)
    return any(str(n) in deep for n in names)


def model_name(feature_set: str, classifier: str) -> str:
    """``"<feature set> / <classifier>"``, the name of one model in every legend."""
    return f"{feature_set} / {classifier}"


_LABELS_IN_TITLES: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "labels_in_titles", default=True)


@contextlib.contextmanager
def labels_outside_titles() -> Iterator[None]:
    """Within this block, :func:`figure_title` leaves out the leakage warning and the weights
    label — for a page that states them once above its figures (the dashboard's banner);
    a paper-protocol title is still marked ``(leaky)``."""
    token = _LABELS_IN_TITLES.set(False)
    try:
        yield
    finally:
        _LABELS_IN_TITLES.reset(token)


def figure_title(title: str, *, paper: bool = False, weights_label: str | None = None,
                 deep: bool = False, width_px: int | None = None) -> str:
    """``title`` plus, on their own lines, the leakage warning (``paper``) and the weights
    label (``deep``), each line wrapped to fit a figure ``width_px`` pixels wide (default
    :data:`TITLE_WIDTH` characters); ``\n`` in ``title`` starts a new line. See
    :func:`labels_outside_titles`."""
    width = TITLE_WIDTH if width_px is None else max(30, int(width_px) // 8)
    if not _LABELS_IN_TITLES.get():
        marked = title.replace("paper protocol", "paper protocol (leaky)", 1) if paper else title
        if paper and marked == title:
            marked = f"{title} (paper protocol, leaky)"
        return "\n".join(textwrap.fill(line, width) for line in marked.split("\n"))
    lines = title.split("\n")
    if paper:
        lines.append(f"⚠ {PAPER_TITLE_WARNING}")
    if deep:
        lines.append(f"Deep features: {weights_label or 'weights not recorded'}")
    return "\n".join(textwrap.fill(line, width) for line in lines)


def plain(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with string columns as ``object`` dtype: HoloViews reshapes columns with
    numpy, which pandas' Arrow-backed strings refuse."""
    out = table.copy()
    for col in out.columns:
        if pd.api.types.is_string_dtype(out[col].dtype) and out[col].dtype != object:
            out[col] = out[col].astype(object)
    return out


def require_columns(table: pd.DataFrame, columns: Sequence[str], *, what: str,
                    step: str) -> None:
    """Raise :class:`PlotInputError` naming the missing columns of ``table``."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise PlotInputError(f"{what} lacks column(s) {missing}; got {list(table.columns)}",
                             step=step)


def select_rows(table: pd.DataFrame, *, what: str, step: str, **equal) -> pd.DataFrame:
    """Rows of ``table`` where every ``column == value`` of ``equal`` holds; an error that
    lists the available values when none does."""
    require_columns(table, list(equal), what=what, step=step)
    mask = pd.Series(True, index=table.index)
    for col, value in equal.items():
        mask &= table[col].astype(str) == str(value)
    out = table[mask]
    if out.empty:
        avail = {c: sorted(map(str, table[c].dropna().unique()))[:20] for c in equal}
        raise PlotInputError(f"no {what} rows for {equal}; available: {avail}", step=step)
    return out


def eval_predictions(predictions: pd.DataFrame, protocol: str, split: str) -> pd.DataFrame:
    """Predictions of one protocol and split; for ``cv`` only the first repeat (each
    training patient once, as the metrics table evaluates them)."""
    require_columns(predictions, ["patient_id", "protocol", "feature_set", "classifier",
                                  "split", "probability", "label"],
                    what="predictions table", step="plot")
    part = select_rows(predictions, what="prediction", step="plot", protocol=protocol,
                       split=split)
    if split == "cv" and "repeat" in part.columns:
        part = part[part["repeat"] == part["repeat"].min()]
    return part


def model_keys(part: pd.DataFrame,
               models: Sequence[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    """``(feature_set, classifier)`` pairs to draw: ``models`` (checked) or all, in table
    order."""
    have = list(dict.fromkeys(zip(part["feature_set"].astype(str),
                                  part["classifier"].astype(str), strict=True)))
    if models is None:
        return have
    wanted = [(str(f), str(c)) for f, c in models]
    missing = [m for m in wanted if m not in have]
    if missing:
        raise PlotInputError(f"models {missing} have no predictions here; available: {have}",
                             step="plot")
    return wanted
