"""noise_table: the study's shape, deterministic, pure noise unless signal is asked for."""

import numpy as np
import pandas as pd
import pytest

from workbench.models.feature_sets import available_blocks
from workbench.models.noise import STUDY_BLOCKS, NoiseBlock, noise_table

SMALL = (NoiseBlock("rad__f", 30, 3, 0.8), NoiseBlock("kin__k", 4, 1, 0.8))


def test_default_table_has_the_study_shape():
    features, clinical, y = noise_table()
    assert features.shape == (163, 1702 + 17 + 8576)
    assert sum(b.width for b in STUDY_BLOCKS) == features.shape[1]
    assert set(available_blocks(features.columns)) == {
        "radiomics", "kinetic", "resnet50", "densenet169", "inceptionv3",
        "inceptionresnetv2", "efficientnetb0"}
    assert list(clinical.columns) == ["clin__age", "clin__subtype_her2pos",
                                      "clin__subtype_tn", "clin__hr_pos"]
    assert features.index.equals(clinical.index) and features.index.equals(y.index)
    assert set(y.unique()) == {0, 1}


def test_same_seed_same_table_other_seed_other_table():
    a = noise_table(40, 3, blocks=SMALL)
    b = noise_table(40, 3, blocks=SMALL)
    c = noise_table(40, 4, blocks=SMALL)
    assert all(x.equals(z) for x, z in zip(a, b, strict=True))
    assert not a[0].equals(c[0])


def test_signal_only_moves_the_informative_columns():
    pure, clin0, y0 = noise_table(50, 1, blocks=SMALL)
    weak, clin1, y1 = noise_table(50, 1, blocks=SMALL, signal=1.0)
    assert y0.equals(y1)
    informative = ["rad__f0", "rad__f1", "rad__f2", "kin__k0"]
    rest = [c for c in pure.columns if c not in informative]
    pd.testing.assert_frame_equal(pure[rest], weak[rest])
    shift = (weak[informative] - pure[informative]).to_numpy()
    assert np.all(np.abs(shift) > 0)
    # the shift is strength x latent, latent = label + noise: larger for pCR on average
    assert shift[y0.to_numpy() == 1].mean() > shift[y0.to_numpy() == 0].mean()


def test_pure_noise_columns_are_standard_normal():
    features, _, _ = noise_table(400, 0, blocks=(NoiseBlock("rad__f", 50, 5, 1.0),))
    values = features.to_numpy()
    assert abs(values.mean()) < 0.02 and abs(values.std() - 1) < 0.02


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n": 1}, "n must be at least 2"),
    ({"pcr_rate": 1.0}, "pcr_rate must be in"),
    ({"signal": -1}, "signal must be >= 0"),
    ({"blocks": ()}, "at least one NoiseBlock"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        noise_table(**kwargs)
