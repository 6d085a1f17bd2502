"""Cohort preprocessing: content-addressed cache, atomic outputs, per-patient failure isolation."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from workbench.cohort.table import validate_cohort
from workbench.hashing import input_digest
from workbench.imaging.io import write_image
from workbench.imaging.preprocess import PreprocessSettings
from workbench.pipeline import preprocess as pipeline
from workbench.pipeline.preprocess import DONE_FILE, cache_key, preprocess_cohort

SIZE = (40, 40, 12)
SPACING = (0.8, 0.8, 2.2)
ORIGIN = (-21.5, 13.25, -40.0)
_A = np.deg2rad(10.0)
DIRECTION = (np.cos(_A), -np.sin(_A), 0.0, np.sin(_A), np.cos(_A), 0.0, 0.0, 0.0, 1.0)
PHASES = {"pre": (100.0, 110.0), "early": (110.0, 260.0), "late": (115.0, 200.0)}
FAST = PreprocessSettings(n4=False)


def to_image(arr: np.ndarray, dtype=np.float32, origin=ORIGIN) -> sitk.Image:
    img = sitk.GetImageFromArray(arr.astype(dtype))
    img.SetSpacing(SPACING)
    img.SetOrigin(origin)
    img.SetDirection(DIRECTION)
    return img


def write_patient(root: Path, pid: str, seed: int = 0, *, mask: str = "ok",
                  corrupt: str | None = None, missing: str | None = None,
                  no_path: str | None = None) -> dict:
    """Write one synthetic patient and return its cohort row.

    ``mask``: ``"ok"``, ``"empty"``, ``"labels"`` (non-binary) or ``"shifted"`` (other grid).
    ``corrupt`` / ``missing`` / ``no_path``: a phase written as garbage / never written /
    given no path.
    """
    rng = np.random.default_rng(seed)
    folder = root / pid
    folder.mkdir(parents=True)
    nz, ny, nx = SIZE[2], SIZE[1], SIZE[0]
    z, y, x = np.meshgrid(np.arange(nz) * 2.2, np.arange(ny) * 0.8, np.arange(nx) * 0.8,
                          indexing="ij")
    cx, cy, cz = x.max() / 2, y.max() * 0.55, z.max() / 2
    body = ((x - cx) / 13.0) ** 2 + ((y - cy) / 14.0) ** 2 < 1
    tumour = (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 < 4.5**2
    row: dict = {"patient_id": pid, "pcr": int(seed % 2), "age": 50 + seed}
    for phase, (tissue, lesion) in PHASES.items():
        path = folder / f"{phase}.nii.gz"
        row[f"image_{phase}"] = None if phase == no_path else str(path)
        if phase == missing or phase == no_path:
            continue
        if phase == corrupt:
            path.write_bytes(b"\x1f\x8b garbage, not a NIfTI file" * 10)
            continue
        arr = np.where(body, tissue, 3.0) + np.where(tumour, lesion - tissue, 0.0)
        arr = np.abs(arr + rng.normal(0, 3.0, arr.shape)) * (1 + 0.2 * x / x.max())
        write_image(to_image(arr), path)
    labels = tumour.astype(np.uint8)
    origin = ORIGIN
    if mask == "empty":
        labels[:] = 0
    elif mask == "labels":
        labels[tumour & (x > cx)] = 2
    elif mask == "shifted":
        origin = (ORIGIN[0] + 5.0, ORIGIN[1], ORIGIN[2])
    row["mask"] = str(write_image(to_image(labels, np.uint8, origin), folder / "mask.nii.gz"))
    return row


def cohort_of(root: Path, rows: list[dict]):
    return validate_cohort(pd.DataFrame(rows), name="t", source=str(root / "cohort.csv"))


def read(path: str) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(path))


@pytest.fixture
def good_cohort(tmp_path):
    rows = [write_patient(tmp_path / "raw", f"P{i}", seed=i) for i in range(3)]
    return cohort_of(tmp_path, rows)


# --------------------------------------------------------------------------- cache
def test_rerun_hits_cache_and_setting_change_recomputes(good_cohort, tmp_path):
    out = tmp_path / "pre"
    t0 = time.perf_counter()
    first = preprocess_cohort(good_cohort, out, progress=False)
    t_first = time.perf_counter() - t0
    assert (first.n_computed, first.n_cached, first.problems) == (3, 0, [])
    assert first.table["patient_id"].tolist() == ["P0", "P1", "P2"]
    assert list(first.table.columns[:6]) == ["patient_id", "image_pre", "image_early",
                                             "image_late", "mask", "cache_key"]
    for _, row in first.table.iterrows():
        folder = Path(row["mask"]).parent
        assert folder.parent == out and folder.name == row["cache_key"]
        meta = json.loads((folder / DONE_FILE).read_text())
        assert meta["settings_key"] == PreprocessSettings().key()
        assert sitk.ReadImage(row["image_early"]).GetSpacing() == (1.0, 1.0, 1.0)
    assert first.table["zscore_std"].gt(0).all() and first.table["mask_voxels"].gt(0).all()

    t0 = time.perf_counter()
    second = preprocess_cohort(good_cohort, out, progress=False)
    t_second = time.perf_counter() - t0
    assert (second.n_computed, second.n_cached) == (0, 3)
    assert second.table["cached"].all()
    cols = [c for c in first.table.columns if c != "cached"]
    pd.testing.assert_frame_equal(second.table[cols], first.table[cols])
    assert t_second < 0.5 * t_first, (t_first, t_second)

    changed = preprocess_cohort(good_cohort, out, progress=False,
                                settings=PreprocessSettings(zscore_region="all"))
    assert (changed.n_computed, changed.n_cached) == (3, 0)
    assert set(changed.table["cache_key"]).isdisjoint(first.table["cache_key"])
    assert len([p for p in out.iterdir() if p.is_dir()]) == 6


def test_outputs_identical_when_recomputed(good_cohort, tmp_path):
    a = preprocess_cohort(good_cohort, tmp_path / "a", progress=False)
    b = preprocess_cohort(good_cohort, tmp_path / "b", progress=False)
    assert b.n_computed == 3
    assert a.table["cache_key"].tolist() == b.table["cache_key"].tolist()
    for col in ["image_pre", "image_early", "image_late", "mask"]:
        for pa, pb in zip(a.table[col], b.table[col], strict=True):
            np.testing.assert_array_equal(read(pa), read(pb))


def test_key_follows_content_not_location(tmp_path):
    row = write_patient(tmp_path, "P0")
    paths = {p: row[f"image_{p}"] for p in PHASES}
    key = cache_key(paths, row["mask"], FAST)
    moved = tmp_path / "moved.nii.gz"
    moved.write_bytes(Path(paths["late"]).read_bytes())
    assert cache_key({**paths, "late": str(moved)}, row["mask"], FAST) == key
    assert cache_key(paths, row["mask"], PreprocessSettings()) != key
    write_image(sitk.ReadImage(paths["pre"]) * 1.01, paths["pre"])
    assert cache_key(paths, row["mask"], FAST) != key


def test_dicom_folder_digest_includes_files_and_selector(tmp_path):
    series = tmp_path / "series"
    series.mkdir()
    (series / "1.dcm").write_bytes(b"one")
    (series / "2.dcm").write_bytes(b"two")
    d1, d2 = input_digest(f"{series}#t=1"), input_digest(f"{series}#t=2")
    assert d1 != d2 and input_digest(str(series)) not in (d1, d2)
    (series / "2.dcm").write_bytes(b"TWO")
    assert input_digest(f"{series}#t=1") != d1


def test_file_vanishing_before_hashing_is_a_read_problem(good_cohort, tmp_path):
    Path(good_cohort.df.loc[2, "image_late"]).unlink()  # deleted after validation
    result = preprocess_cohort(good_cohort, tmp_path / "pre", settings=FAST, progress=False)
    assert result.table["patient_id"].tolist() == ["P0", "P1"]
    (problem,) = result.problems
    assert (problem.patient_id, problem.step) == ("P2", "read")
    assert problem.file == good_cohort.df.loc[2, "image_late"]


def test_incomplete_folder_is_recomputed(good_cohort, tmp_path):
    out = tmp_path / "pre"
    first = preprocess_cohort(good_cohort, out, settings=FAST, progress=False)
    victim = Path(first.table.loc[1, "mask"]).parent
    (victim / DONE_FILE).unlink()  # as if the run was killed before done.json
    (out / ".tmp-deadbeef-12345678").mkdir()  # a leftover temp folder is ignored
    again = preprocess_cohort(good_cohort, out, settings=FAST, progress=False)
    assert (again.n_computed, again.n_cached) == (1, 2)
    assert (victim / DONE_FILE).is_file()


def test_parallel_jobs_match_serial(good_cohort, tmp_path):
    serial = preprocess_cohort(good_cohort, tmp_path / "s", settings=FAST, progress=False)
    parallel = preprocess_cohort(good_cohort, tmp_path / "p", settings=FAST, jobs=2,
                                 progress=True)
    assert parallel.n_computed == 3 and parallel.problems == []
    assert parallel.table["patient_id"].tolist() == ["P0", "P1", "P2"]
    assert parallel.table["cache_key"].tolist() == serial.table["cache_key"].tolist()
    for pa, pb in zip(serial.table["image_late"], parallel.table["image_late"], strict=True):
        np.testing.assert_array_equal(read(pa), read(pb))


# --------------------------------------------------------------------------- failures
def test_each_bad_patient_is_a_problem_and_the_good_one_is_processed(tmp_path):
    raw = tmp_path / "raw"
    rows = [
        write_patient(raw, "good"),
        write_patient(raw, "corrupt", corrupt="early"),
        write_patient(raw, "shifted", mask="shifted"),
        write_patient(raw, "empty", mask="empty"),
        write_patient(raw, "labels", mask="labels"),
        write_patient(raw, "missing", missing="late"),
        write_patient(raw, "nopath", no_path="pre"),
    ]
    result = preprocess_cohort(cohort_of(tmp_path, rows), tmp_path / "pre", settings=FAST,
                               progress=False)
    assert result.table["patient_id"].tolist() == ["good"]
    assert result.n_computed == 1
    by_patient = {p.patient_id: p for p in result.problems}
    assert set(by_patient) == {"corrupt", "shifted", "empty", "labels", "missing", "nopath"}
    expected = {  # patient: (step, file, words in the message)
        "corrupt": ("read", raw / "corrupt" / "early.nii.gz", "corrupt or unsupported"),
        "shifted": ("geometry", raw / "shifted" / "mask.nii.gz", "origin"),
        "empty": ("mask", raw / "empty" / "mask.nii.gz", "empty"),
        "labels": ("mask", raw / "labels" / "mask.nii.gz", "not binary"),
        "missing": ("preprocess", raw / "missing" / "late.nii.gz", "does not exist"),
        "nopath": ("preprocess", None, "no path given"),
    }
    for pid, (step, file, words) in expected.items():
        problem = by_patient[pid]
        assert problem.step == step, problem
        assert problem.file == (None if file is None else str(file)), problem
        assert words in problem.message, problem
        assert problem.severity == "error"
    frame = result.problems_frame()
    assert len(frame) == 6 and frame["patient_id"].notna().all()


def test_unexpected_exception_becomes_problem_with_type_and_traceback(good_cohort, tmp_path,
                                                                      monkeypatch, caplog):
    real = pipeline.preprocess_patient

    def flaky(paths, mask_path, settings, *, patient=None, **kwargs):
        if patient == "P1":
            raise ZeroDivisionError("boom")
        return real(paths, mask_path, settings, patient=patient, **kwargs)

    monkeypatch.setattr(pipeline, "preprocess_patient", flaky)
    with caplog.at_level(logging.ERROR, logger="workbench.batch"):
        result = preprocess_cohort(good_cohort, tmp_path / "pre", settings=FAST, progress=False)
    assert result.table["patient_id"].tolist() == ["P0", "P2"]
    (problem,) = result.problems
    assert problem.patient_id == "P1" and problem.step == "preprocess"
    assert "ZeroDivisionError" in problem.message and "boom" in problem.message
    assert "Traceback" in caplog.text and "ZeroDivisionError" in caplog.text


def test_empty_cohort_gives_empty_table(tmp_path):
    row = write_patient(tmp_path / "raw", "only", missing="pre")
    result = preprocess_cohort(cohort_of(tmp_path, [row]), tmp_path / "pre", progress=False)
    assert result.table.empty and "image_pre" in result.table.columns
    assert [p.patient_id for p in result.problems] == ["only"]


def test_a_warm_rerun_starts_no_job_and_a_rewritten_input_recomputes_its_patient(
        good_cohort, tmp_path, monkeypatch):
    out = tmp_path / "pre"
    first = preprocess_cohort(good_cohort, out, settings=FAST, progress=False)
    started = []
    real = pipeline._process_one

    def counting(pid, *args):
        started.append(pid)
        return real(pid, *args)

    monkeypatch.setattr(pipeline, "_process_one", counting)
    warm = preprocess_cohort(good_cohort, out, settings=FAST, progress=False)
    assert started == [] and (warm.n_computed, warm.n_cached) == (0, len(first.table))
    cols = [c for c in first.table.columns if c != "cached"]
    pd.testing.assert_frame_equal(warm.table[cols], first.table[cols])

    late = Path(good_cohort.df.set_index("patient_id").loc["P1", "image_late"])
    image = sitk.ReadImage(str(late))
    write_image(sitk.Cast(image, sitk.sitkFloat32) * 2.0, late)
    changed = preprocess_cohort(good_cohort, out, settings=FAST, progress=False)
    assert started == ["P1"] and (changed.n_computed, changed.n_cached) == (1, 2)
    keys = changed.table.set_index("patient_id")["cache_key"]
    before = first.table.set_index("patient_id")["cache_key"]
    assert keys["P1"] != before["P1"] and keys.drop("P1").equals(before.drop("P1"))
