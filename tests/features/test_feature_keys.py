"""Cache keys hold everything that shapes a value: the source that computes it (a digest, not
a hand-bumped version) and SimpleITK's thread count, besides inputs, parameters and versions."""

from __future__ import annotations

import pandas as pd
import pytest
from test_extract import small_params, write_patient

from workbench.features import kinetic, radiomics
from workbench.hashing import code_digest
from workbench.imaging.preprocess import PreprocessSettings
from workbench.pipeline import preprocess


@pytest.fixture
def one_patient(tmp_path):
    table = pd.DataFrame([write_patient(tmp_path / "pre", "P0", radius=4.0)])
    return table, small_params(tmp_path / "params.yaml", classes=("shape", "firstorder"),
                               wavelet_classes=False)


def test_radiomics_key_follows_its_code_and_thread_count(one_patient, tmp_path, monkeypatch):
    table, params = one_patient
    store = tmp_path / "store"
    first = radiomics.extract_radiomics(table, store, params_path=params, progress=False)
    assert first.units_computed == 3 and first.errors.empty  # shape + 2 phases
    again = radiomics.extract_radiomics(table, store, params_path=params, progress=False)
    assert again.units_cached == 3 and again.units_computed == 0
    threads = radiomics.extract_radiomics(table, store, params_path=params, progress=False,
                                          itk_threads=2)
    assert threads.units_computed == 3
    monkeypatch.setattr(radiomics, "code_digest", lambda modules: "edited radiomics code")
    edited = radiomics.extract_radiomics(table, store, params_path=params, progress=False)
    assert edited.units_computed == 3 and edited.units_cached == 0
    pd.testing.assert_frame_equal(edited.features, first.features, check_exact=True)


def test_kinetic_key_follows_its_code(one_patient, tmp_path, monkeypatch):
    table, _ = one_patient
    store = tmp_path / "store"
    assert kinetic.extract_kinetic(table, store, progress=False).units_computed == 1
    assert kinetic.extract_kinetic(table, store, progress=False).units_cached == 1
    monkeypatch.setattr(kinetic, "code_digest", lambda modules: "edited kinetic code")
    assert kinetic.extract_kinetic(table, store, progress=False).units_computed == 1


def test_no_hand_set_versions_and_the_hashed_code_exists():
    assert not hasattr(radiomics, "RADIOMICS_VERSION")
    assert not hasattr(kinetic, "KINETIC_VERSION")
    for modules in (radiomics.RADIOMICS_CODE, kinetic.KINETIC_CODE, preprocess.PREPROCESS_CODE):
        assert len(code_digest(modules)) == 64  # every listed module is a file of the package


def test_preprocessing_key_follows_its_code(tmp_path, monkeypatch):
    row = write_patient(tmp_path, "P0")
    paths = {p: row[f"image_{p}"] for p in ("pre", "early", "late")}
    key = preprocess.cache_key(paths, row["mask"], PreprocessSettings())
    monkeypatch.setattr(preprocess, "preprocess_code_digest", lambda: "edited imaging code")
    assert preprocess.cache_key(paths, row["mask"], PreprocessSettings()) != key
