"""Feature driver: content-addressed cache, kill -9 resume, joblib and Dask give identical values.

Also home of the tiny "preprocessed" patients the other feature tests import
(:func:`write_patient`, :func:`small_params`): 30 x 30 x 20 voxels at 1 mm, z-scored phases,
a ~10 mm spherical tumour.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from workbench.batch import n_workers
from workbench.features.extract import FeatureResult
from workbench.features.kinetic import extract_kinetic
from workbench.features.radiomics import extract_radiomics
from workbench.features.store import FeatureStore, errors_frame, make_key
from workbench.files import atomic_write_text

SIZE = (30, 30, 20)  # x, y, z
RAW = {"pre": (100.0, 90.0), "early": (105.0, 200.0), "late": (108.0, 170.0)}  # tissue, tumour


def write_patient(root: Path, pid: str, *, seed: int = 0, mask: str = "ok",
                  nan_phase: str | None = None, radius: float = 5.0,
                  centre: tuple[float, float, float] = (15.0, 14.0, 10.0),
                  raw: dict | None = None) -> dict:
    """Write one preprocessed-like patient (z-scored float32 phases + uint8 mask); return its row.

    ``mask``: ``"ok"``, ``"empty"``, ``"one"`` (one voxel), ``"tiny"`` (2x2x2 voxels) or
    ``"border"`` (the tumour touches the x = 0 face).
    """
    rng = np.random.default_rng(seed)
    folder = root / pid
    folder.mkdir(parents=True, exist_ok=True)
    z, y, x = np.meshgrid(*(np.arange(n, dtype=float) for n in SIZE[::-1]), indexing="ij")
    cx, cy, cz = (2.0, centre[1], centre[2]) if mask == "border" else centre
    tumour = (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 <= radius**2
    raw = raw or RAW
    # fat / fibroglandular-like structure, so the body SD (the z unit) is realistic (~40)
    texture = 50.0 * np.sin(x / 3.0) * np.cos(y / 4.0 + seed)
    phases = {p: np.where(tumour, lesion, tissue + texture) + rng.normal(0, 4.0, tumour.shape)
              for p, (tissue, lesion) in raw.items()}
    pooled = np.concatenate([a.ravel() for a in phases.values()])
    mean, std = float(pooled.mean()), float(pooled.std())
    row: dict = {"patient_id": pid}
    for phase, arr in phases.items():
        zarr = ((arr - mean) / std).astype(np.float32)
        if phase == nan_phase:
            zarr[int(cz), int(cy), int(cx)] = np.nan
        row[f"image_{phase}"] = _write(zarr, folder / f"image_{phase}.nii.gz")
    labels = tumour.astype(np.uint8)
    if mask == "empty":
        labels[:] = 0
    elif mask == "one":
        labels[:] = 0
        labels[10, 14, 15] = 1
    elif mask == "tiny":
        labels[:] = 0
        labels[9:11, 13:15, 14:16] = 1
    row["mask"] = _write(labels, folder / "mask.nii.gz")
    row.update(mask_voxels=int(labels.sum()), zscore_mean=mean, zscore_std=std)
    return row


def _write(arr: np.ndarray, path: Path) -> str:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((1.0, 1.0, 1.0))
    img.SetOrigin((-15.0, 4.0, 30.0))
    sitk.WriteImage(img, str(path), True)
    return str(path)


def small_params(path: Path, *, level: int = 1, bin_width: float = 0.1,
                 classes: tuple[str, ...] = ("shape", "firstorder", "glcm"),
                 wavelet_classes: bool = True) -> Path:
    """A fast radiomics parameter file (a few classes, Original + Wavelet)."""
    image_types = "  Original: {}\n" + ("  Wavelet: {}\n" if wavelet_classes else "")
    text = textwrap.dedent(f"""\
        version: 1
        setting:
          binWidth: {bin_width}
          preCrop: true
          padDistance: 5
          level: {level}
        imageType:
        """) + image_types + "featureClass:\n" + "".join(f"  {c}:\n" for c in classes)
    path.write_text(text)
    return path


def cohort(root: Path, n: int = 4) -> pd.DataFrame:
    return pd.DataFrame([write_patient(root, f"P{i}", seed=i, radius=4.0 + i) for i in range(n)])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[pd.DataFrame, Path, Path]:
    root = tmp_path_factory.mktemp("feat")
    table = cohort(root / "pre")
    params = small_params(root / "small.yaml")
    return table, params, root


def test_rerun_recomputes_nothing_and_stages_are_independent(tiny, tmp_path):
    table, params, root = tiny
    store = tmp_path / "store"
    first = extract_radiomics(table, store, params_path=params, progress=False)
    assert (first.n_computed, first.n_cached, first.units_computed) == (4, 0, 12)
    again = extract_radiomics(table, store, params_path=params, progress=False)
    assert (again.n_computed, again.n_cached, again.units_computed) == (0, 4, 0)
    pd.testing.assert_frame_equal(first.features, again.features, check_exact=True)
    assert again.seconds < first.seconds

    kin = extract_kinetic(table, store, progress=False)
    assert kin.n_computed == 4
    # a texture parameter recomputes the phases, not the shape units, and not the kinetics
    rebinned = small_params(tmp_path / "rebinned.yaml", bin_width=0.2)
    changed = extract_radiomics(table, store, params_path=rebinned, progress=False)
    assert (changed.units_computed, changed.units_cached) == (8, 4)
    assert not changed.features.filter(like="glcm").equals(first.features.filter(like="glcm"))
    assert extract_kinetic(table, store, progress=False).n_cached == 4
    # a kinetic threshold recomputes the kinetics only
    assert extract_kinetic(table, store, pe_threshold=0.5, progress=False).n_computed == 4
    assert extract_radiomics(table, store, params_path=params, progress=False).n_cached == 4


def test_edited_input_invalidates_only_that_patient(tiny, tmp_path):
    table, params, root = tiny
    store = tmp_path / "store"
    extract_radiomics(table, store, params_path=params, progress=False)
    edited = table.copy()
    new = write_patient(tmp_path / "edit", "P1", seed=99, radius=5.0)
    edited.loc[1, "image_early"] = new["image_early"]
    result = extract_radiomics(edited, store, params_path=params, progress=False)
    assert (result.n_computed, result.units_computed) == (1, 1)


def test_jobs_and_dask_match_sequential(tiny, tmp_path):
    distributed = pytest.importorskip("distributed")
    table, params, root = tiny
    ref = extract_radiomics(table, tmp_path / "seq", params_path=params, progress=False)
    par = extract_radiomics(table, tmp_path / "par", params_path=params, jobs=2, progress=False)
    pd.testing.assert_frame_equal(ref.features, par.features, check_exact=True)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, scheduler_port=0) as cluster, \
            distributed.Client(cluster) as client:
        dask = extract_radiomics(table, tmp_path / "dask", params_path=params,
                                 scheduler=client, progress=False)
        kin_dask = extract_kinetic(table, tmp_path / "dask", scheduler=cluster.scheduler_address,
                                   progress=False)
    pd.testing.assert_frame_equal(ref.features, dask.features, check_exact=True)
    kin = extract_kinetic(table, tmp_path / "seq", progress=False)
    pd.testing.assert_frame_equal(kin.features, kin_dask.features, check_exact=True)
    assert dask.units_computed == 12 and dask.errors.empty


CHILD = """
import sys, time
import pandas as pd
from workbench.features import radiomics

_phase_unit = radiomics.phase_unit

def slow_phase_unit(*args, **kwargs):  # slow enough to be killed half-way
    out = _phase_unit(*args, **kwargs)
    time.sleep(0.4)
    return out

radiomics.phase_unit = slow_phase_unit
radiomics.extract_radiomics(pd.read_parquet(sys.argv[1]), sys.argv[2], params_path=sys.argv[3],
                            progress=False)
"""


def test_kill_9_resumes_to_identical_table(tiny, tmp_path):
    table, params, root = tiny
    reference = extract_radiomics(table, tmp_path / "ref", params_path=params, progress=False)
    table_path = tmp_path / "table.parquet"
    table.to_parquet(table_path)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    store = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, str(script), str(table_path), str(store),
                             str(params)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    phase_dir = store / "radiomics-phase"
    while proc.poll() is None and time.monotonic() < deadline:
        if phase_dir.is_dir() and any(phase_dir.rglob("*.json")):
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"child ended early: {proc.stderr.read().decode()[-2000:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    stored = sum(1 for _ in store.rglob("*.json"))
    assert 1 <= stored < 12
    resumed = extract_radiomics(table, store, params_path=params, progress=False)
    assert resumed.units_cached == stored and resumed.units_computed == 12 - stored
    pd.testing.assert_frame_equal(resumed.features, reference.features, check_exact=True)
    assert resumed.errors.empty


def test_store_round_trip_is_exact_and_atomic(tmp_path):
    store = FeatureStore(tmp_path, "ns")
    key = make_key("ns", {"a": 1})
    values = {"x": 0.1 + 0.2, "y": float("nan"), "z": 1e-300, "w": -np.pi}
    store.save(key, {"key": key, "features": values})
    back = store.load(key)["features"]
    assert back["x"] == values["x"] and back["z"] == values["z"] and back["w"] == values["w"]
    assert np.isnan(back["y"])
    assert [p.name for p in store.path(key).parent.iterdir()] == [f"{key}.json"]
    atomic_write_text(store.path(key), "{trunc")  # a corrupt record is recomputed, not trusted
    assert store.load(key) is None
    assert make_key("ns", {"a": 1}) != make_key("other", {"a": 1})


def test_errors_frame_and_result_save(tmp_path):
    rows = [{"patient_id": "A", "step": "mask", "file": "m.nii.gz", "message": "empty"}] * 2
    errors = errors_frame(rows)
    assert list(errors.columns) == ["patient_id", "step", "file", "message"]
    assert len(errors) == 1
    features = pd.DataFrame({"rad__pre__x": [1.0]}, index=pd.Index(["B"], name="patient_id"))
    result = FeatureResult(features, errors, n_cached=0, n_computed=1, seconds=0.1)
    path = result.save(tmp_path / "radiomics.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(path), features)
    assert pd.read_csv(tmp_path / "radiomics.errors.csv").loc[0, "step"] == "mask"
    assert result.n_failed == 1


def test_n_workers():
    cpus = os.cpu_count() or 1
    assert n_workers(1, 10) == 1
    assert n_workers(-1, 1000) == cpus
    assert n_workers(8, 3) == 3


def test_unreadable_record_meta_is_json(tiny, tmp_path):
    table, params, root = tiny
    extract_radiomics(table.iloc[:1], tmp_path, params_path=params, progress=False)
    record = json.loads(next((tmp_path / "radiomics-phase").rglob("*.json")).read_text())
    assert record["patient_id"] == "P0" and record["meta"]["stage"] == "radiomics"
    assert record["meta"]["versions"]["numpy"] == np.__version__
