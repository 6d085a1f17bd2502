"""Feature tables of the study's shape made of noise, for teaching and benchmarks.

:func:`noise_table` draws standard-normal feature blocks named like the extracted ones
(``rad__``, ``kin__``, ``dl_<network>__``), labels with a chosen pCR rate and a small clinical
design matrix. With ``signal=0`` (the default) nothing in the table is related to the labels,
so any protocol that scores a test AUC far from 0.5 on it is leaking: this is how
``notebooks/08_teaching_leakage.ipynb`` shows the study's order (selection on the whole cohort,
then the split) manufacturing a result. ``signal=1`` adds the weak latent signal that
``benchmarks/modelling.py --synthetic`` uses to time the modelling grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["NETWORK_WIDTHS", "STUDY_BLOCKS", "NoiseBlock", "noise_table"]

#: Width of each network's pooled feature vector (the study's 8,576 deep features).
NETWORK_WIDTHS: dict[str, int] = {"resnet50": 2048, "densenet169": 1664, "inceptionv3": 2048,
                                  "inceptionresnetv2": 1536, "efficientnetb0": 1280}


@dataclass(frozen=True)
class NoiseBlock:
    """One block of noise columns ``<prefix>0 .. <prefix><width-1>``.

    The first ``informative`` columns get ``strength × signal`` times a latent variable that
    depends on the label (see :func:`noise_table`); the others are pure noise.
    """

    prefix: str
    width: int
    informative: int = 0
    strength: float = 0.0


#: The study's shape: 1,702 radiomics, 17 kinetic and 8,576 deep columns.
STUDY_BLOCKS: tuple[NoiseBlock, ...] = (
    NoiseBlock("rad__f", 1702, 5, 0.4),
    NoiseBlock("kin__k", 17, 2, 0.4),
    *(NoiseBlock(f"dl_{net}__", width, 5, 0.3) for net, width in NETWORK_WIDTHS.items()),
)


def noise_table(n: int = 163, seed: int = 0, *, pcr_rate: float = 0.3, signal: float = 0.0,
                blocks: Sequence[NoiseBlock] = STUDY_BLOCKS
                ) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """Features, clinical matrix and pCR labels drawn at random.

    Parameters
    ----------
    n
        Patients (ids ``SYN000`` ...).
    seed
        Seed of the one random generator every column is drawn from (same seed, same table).
    pcr_rate
        Probability of pCR of each patient.
    signal
        Multiplier of each block's ``strength``: 0 gives pure noise (labels unrelated to every
        feature and clinical column); 1 gives the benchmark's weak signal in the informative
        columns and a subtype mix that differs by pCR.
    blocks
        Feature blocks, in column order (default :data:`STUDY_BLOCKS`).

    Returns
    -------
    features : pandas.DataFrame
        ``n`` rows (index: patient id) and one column per block column, float64.
    clinical : pandas.DataFrame
        ``clin__age``, ``clin__subtype_her2pos``, ``clin__subtype_tn``, ``clin__hr_pos``.
    y : pandas.Series
        pCR, 0/1, same index.

    Raises
    ------
    ValueError
        For ``n < 2``, ``pcr_rate`` outside (0, 1), a negative ``signal`` or no blocks.
    """
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    if not 0 < pcr_rate < 1:
        raise ValueError(f"pcr_rate must be in (0, 1), got {pcr_rate}")
    if signal < 0:
        raise ValueError(f"signal must be >= 0, got {signal}")
    if not blocks:
        raise ValueError("blocks must name at least one NoiseBlock")
    rng = np.random.default_rng(seed)
    ids = [f"SYN{i:03d}" for i in range(n)]
    y = pd.Series((rng.random(n) < pcr_rate).astype(int), index=ids)
    latent = y.to_numpy() + rng.standard_normal(n)  # what the images would reflect
    parts = []
    for b in blocks:
        values = rng.standard_normal((n, b.width)).astype(np.float64)
        values[:, :b.informative] += signal * b.strength * latent[:, None]
        parts.append(pd.DataFrame(values, index=ids,
                                  columns=[f"{b.prefix}{j}" for j in range(b.width)]))
    features = pd.concat(parts, axis=1)
    subtype = rng.choice(3, size=n, p=[0.55, 0.25, 0.20])  # HR+/HER2-, HER2+, TN
    if signal > 0:  # pCR patients: more HER2+ and triple negative, as in I-SPY1
        subtype = np.where(y.to_numpy() == 1, rng.choice(3, size=n, p=[0.3, 0.4, 0.3]),
                           subtype)
    clinical = pd.DataFrame({"clin__age": rng.normal(48, 9, n).round(),
                             "clin__subtype_her2pos": (subtype == 1).astype(float),
                             "clin__subtype_tn": (subtype == 2).astype(float),
                             "clin__hr_pos": (subtype == 0).astype(float)}, index=ids)
    return features, clinical, y
