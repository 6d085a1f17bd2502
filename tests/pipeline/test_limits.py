"""The run config's ``limits.max_voxels`` reaches every image read of QC and preprocessing."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from fixtures.images import write_tiny_patient
from workbench.config import parse_config
from workbench.errors import ConfigError
from workbench.imaging.header import DEFAULT_MAX_VOXELS
from workbench.imaging.preprocess import PreprocessSettings
from workbench.pipeline.preprocess import cache_key
from workbench.pipeline.stages import preprocess_stage, qc_stage


def _cohort(tmp_path):
    from workbench.cohort.loaders.manifest import load_manifest

    rows = [{"patient_id": pid, "pcr": i % 2, **write_tiny_patient(tmp_path, pid, seed=i)}
            for i, pid in enumerate(("P1", "P2"))]
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    return load_manifest(tmp_path / "manifest.csv")


def test_the_config_key_is_validated_and_defaults_to_the_reader_cap():
    assert parse_config({}).limits.max_voxels == DEFAULT_MAX_VOXELS == 512**3
    assert parse_config({"limits": {"max_voxels": 1000}}).limits.max_voxels == 1000
    with pytest.raises(ConfigError, match=r"limits\.max_voxels: value 0 is invalid"):
        parse_config({"limits": {"max_voxels": 0}})


def test_qc_and_preprocessing_use_the_configured_cap(tmp_path):
    cfg = parse_config({"preprocessing": {"n4": False}, "limits": {"max_voxels": 1000}})
    qc = qc_stage(_cohort(tmp_path), jobs=1, progress=False, max_voxels=cfg.limits.max_voxels)
    assert len(qc.problems) == 8 and all("limit of 1,000" in p.message for p in qc.problems)
    pre = preprocess_stage(_cohort(tmp_path), cfg, tmp_path / "cache", jobs=1, progress=False)
    assert pre.table.empty and all("limit of 1,000" in p.message for p in pre.problems)


def test_the_cache_key_refuses_one_file_for_two_phases(tmp_path):
    paths = write_tiny_patient(tmp_path, "P1")
    shutil.copy(paths["image_pre"], tmp_path / "copy.nii.gz")
    phases = {"pre": paths["image_pre"], "early": str(tmp_path / "copy.nii.gz")}
    with pytest.raises(Exception, match=r"phase 'early' and phase 'pre' are the same input"):
        cache_key(phases, paths["mask"], PreprocessSettings())
