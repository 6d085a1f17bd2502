"""Fault injection through the CLI: bad inputs and hostile files, as users meet them.

Every case copies a four-patient cohort (tiny NIfTI patients P1..P4), breaks one thing, runs
one ``workbench`` command in-process exactly as the console script does, and checks what a
user would:

* the exit status is the documented one (0 ok; 1 patients excluded with ``--strict``;
  2 bad input, config or usage; never 3, an internal error);
* the message names the patient and the file (or the config key) that is wrong;
* no traceback is printed (they appear only with ``-v``), no ``np.float64(...)`` reprs;
* the other patients finish;
* nothing is written outside ``--out`` (and ``--cache`` where the command takes one): every
  file under the case's folder is compared before and after, the working folder included.

Per-patient image faults run through ``cohort check`` (fast) and, for a few, through
``preprocess`` and ``extract`` too, where the excluded patient must be in the stage's errors
table and summary line.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fixtures.images import write_tiny_patient
from workbench.cli import main

PHASES = ("pre", "early", "late")
IDS = ("P1", "P2", "P3", "P4")
QC_PASSING = "passing image QC       : {n}"
EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """Four tiny patients (images written once per module; each case copies them)."""
    root = tmp_path_factory.mktemp("faults-base")
    for i, pid in enumerate(IDS):
        write_tiny_patient(root, pid, seed=i)
    return root


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


class World:
    """One case's folder: ``in/`` (cohort copy), ``out/``, ``cache/``, ``cwd/``."""

    def __init__(self, base: Path, root: Path, capsys, monkeypatch):
        self.root = root
        self.inp = root / "in"
        shutil.copytree(base, self.inp)
        self.out = root / "out"
        self.cache = root / "cache"
        cwd = root / "cwd"
        cwd.mkdir()
        monkeypatch.chdir(cwd)
        self.capsys = capsys
        self.rows = [{"patient_id": pid, "pcr": i % 2, "age": 40 + i,
                      **{f"image_{ph}": str(self.inp / pid / f"{ph}.nii.gz") for ph in PHASES},
                      "mask": str(self.inp / pid / "mask.nii.gz")}
                     for i, pid in enumerate(IDS)]
        self.manifest = self.inp / "manifest.csv"

    # -- inputs ---------------------------------------------------------------------------
    def path(self, pid: str, what: str) -> Path:
        return Path(self.rows[IDS.index(pid)]["mask" if what == "mask" else f"image_{what}"])

    def set_path(self, pid: str, what: str, value: str | Path) -> None:
        self.rows[IDS.index(pid)]["mask" if what == "mask" else f"image_{what}"] = str(value)

    def write_manifest(self) -> Path:
        pd.DataFrame(self.rows).to_csv(self.manifest, index=False)
        return self.manifest

    def config(self, **extra: str) -> Path:
        """A small run config: no N4 wait, a fast radiomics parameter file, one CNN."""
        params = extra.pop("params", None)
        if params is None:
            params = self.root / "cfg" / "small.yaml"
            params.parent.mkdir(exist_ok=True)
            params.write_text("version: 1\nsetting:\n  binWidth: 0.25\n  preCrop: true\n"
                              "imageType:\n  Original: {}\nfeatureClass:\n  firstorder:\n")
        cfg = self.root / "cfg" / "run.yaml"
        cfg.parent.mkdir(exist_ok=True)
        body = {"version": "1", "name": "faults", "jobs": "1", "seed": "0"}
        text = "".join(f"{k}: {v}\n" for k, v in body.items())
        text += (f"cohort:\n  format: manifest\n  path: {self.manifest}\n"
                 f"radiomics:\n  params: {params}\n"
                 "preprocessing:\n  n4: false\n"
                 f"deep:\n  networks: [{extra.pop('network', 'efficientnetb0')}]\n"
                 "  weights: random\n")
        text += "".join(f"{k}\n" for k in extra.values())
        cfg.write_text(text)
        return cfg

    # -- running --------------------------------------------------------------------------
    def snapshot(self) -> dict[str, tuple[int, int]]:
        skip = (self.out, self.cache)
        seen = {}
        for p in self.root.rglob("*"):
            if any(p == s or s in p.parents for s in skip):
                continue
            try:
                st = p.lstat()
            except OSError:
                continue
            seen[str(p.relative_to(self.root))] = (st.st_size, st.st_mtime_ns)
        return seen

    def run(self, *argv: str | Path) -> Result:
        self.capsys.readouterr()
        for handler in list(logging.root.handlers):  # main() configures logging afresh
            logging.root.removeHandler(handler)
        before = self.snapshot()
        try:
            code = main(["-q", *map(str, argv)])
        except SystemExit as exc:  # argparse: usage errors
            code = exc.code if isinstance(exc.code, int) else EXIT_USAGE
        captured = self.capsys.readouterr()
        after = self.snapshot()
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        assert not changed, f"written outside --out/--cache: {changed}"
        return Result(code, captured.out, captured.err)

    # -- checks ---------------------------------------------------------------------------
    @staticmethod
    def check(res: Result, code: int, *names: str) -> None:
        assert res.code == code, f"exit {res.code}, expected {code}\n{res.text}"
        assert "Traceback" not in res.text, res.text
        assert "internal error" not in res.text, res.text
        assert "np.float64(" not in res.text and "np.int64(" not in res.text, res.text
        for name in names:
            assert name in res.text, f"{name!r} not in output:\n{res.text}"


@pytest.fixture
def w(base, tmp_path, capsys, monkeypatch) -> World:
    return World(base, tmp_path, capsys, monkeypatch)


# --------------------------------------------------------------------------- image faults
def _nii(path: Path) -> Path:
    """The same image as an uncompressed .nii (returns the new path)."""
    import nibabel as nib

    img = nib.load(str(path))
    new = path.with_name(path.name.replace(".nii.gz", ".nii"))
    nib.save(img, str(new))
    return new


def _with_header(path: Path, edit: Callable) -> Path:
    """Rewrite a NIfTI file after ``edit(header, data) -> data`` (nibabel, no checks)."""
    import nibabel as nib

    img = nib.load(str(path))
    data = np.asanyarray(img.dataobj)
    hdr = img.header.copy()
    data = edit(hdr, data)
    new = nib.Nifti1Image(data, None, header=hdr)
    new.header["pixdim"] = hdr["pixdim"]
    nib.save(new, str(path))
    return path


def truncated_nii(w: World) -> tuple[Path, str]:
    p = _nii(w.path("P2", "pre"))
    p.write_bytes(p.read_bytes()[: int(p.stat().st_size * 0.6)])
    return p, "pre"


def truncated_gz_payload(w: World) -> tuple[Path, str]:
    p = w.path("P2", "early")
    raw = gzip.decompress(p.read_bytes())
    p.write_bytes(gzip.compress(raw[: len(raw) // 2]))
    return p, "early"


def broken_gzip_stream(w: World) -> tuple[Path, str]:
    p = w.path("P2", "pre")
    p.write_bytes(p.read_bytes()[:200])
    return p, "pre"


def nii_memory_bomb(w: World) -> tuple[Path, str]:
    import nibabel as nib

    hdr = nib.Nifti1Header()
    hdr.set_data_shape((3000, 3000, 300))
    hdr.set_data_dtype(np.int16)
    hdr["pixdim"][1:4] = 1.0
    hdr["vox_offset"] = 352
    p = w.inp / "P2" / "bomb.nii"
    p.write_bytes(hdr.binaryblock + b"\0" * 4)
    return p, "pre"


def mha_memory_bomb(w: World) -> tuple[Path, str]:
    p = w.inp / "P2" / "bomb.mha"
    p.write_text("ObjectType = Image\nNDims = 3\nDimSize = 3000 3000 300\n"
                 "ElementType = MET_SHORT\nElementDataFile = LOCAL\n")
    return p, "pre"


def fifo(w: World) -> tuple[Path, str]:
    p = w.inp / "P2" / "pipe.nii"
    os.mkfifo(p)
    return p, "pre"


def dev_zero(w: World) -> tuple[Path, str]:
    return Path("/dev/zero"), "pre"


def image_4d(w: World) -> tuple[Path, str]:
    import nibabel as nib

    p = w.inp / "P2" / "four.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((24, 20, 8, 3), np.int16), np.eye(4)), str(p))
    return p, "pre"


def image_2d(w: World) -> tuple[Path, str]:
    import nibabel as nib

    p = w.inp / "P2" / "flat.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((24, 20), np.int16), np.eye(4)), str(p))
    return p, "pre"


def _spacing(value: float) -> Callable[[World], tuple[Path, str]]:
    def make(w: World) -> tuple[Path, str]:
        def edit(hdr, data):
            hdr["pixdim"][3] = value
            return data
        return _with_header(w.path("P2", "late"), edit), "late"
    return make


def vector_image(w: World) -> tuple[Path, str]:
    import SimpleITK as sitk

    p = w.inp / "P2" / "rgb.nii.gz"
    img = sitk.Compose([sitk.Image([24, 20, 8], sitk.sitkUInt8)] * 3)
    sitk.WriteImage(img, str(p))
    return p, "pre"


def garbage(w: World) -> tuple[Path, str]:
    p = w.path("P2", "pre")
    p.write_bytes(b"this is not an image\n" * 20)
    return p, "pre"


def empty_file(w: World) -> tuple[Path, str]:
    p = w.path("P2", "pre")
    p.write_bytes(b"")
    return p, "pre"


def missing(w: World) -> tuple[Path, str]:
    return w.inp / "P2" / "gone.nii.gz", "pre"


def wrong_extension(w: World) -> tuple[Path, str]:
    p = w.inp / "P2" / "pre.txt"
    p.write_text("1 2 3\n")
    return p, "pre"


def symlink_loop(w: World) -> tuple[Path, str]:
    p = w.inp / "P2" / "loop.nii.gz"
    p.symlink_to(p)
    return p, "pre"


def empty_folder(w: World) -> tuple[Path, str]:
    p = w.inp / "P2" / "series"
    p.mkdir()
    return p, "pre"


def nan_voxels(w: World) -> tuple[Path, str]:
    def edit(hdr, data):
        data = data.astype(np.float32)
        data[0, 0, 0] = np.nan
        hdr.set_data_dtype(np.float32)
        return data
    return _with_header(w.path("P2", "pre"), edit), "pre"


def phase_on_other_grid(w: World) -> tuple[Path, str]:
    write_tiny_patient(w.inp / "other", "P2", shape=(20, 20, 8))
    return w.inp / "other" / "P2" / "early.nii.gz", "early"


def mask_on_other_grid(w: World) -> tuple[Path, str]:
    write_tiny_patient(w.inp / "other", "P2", shape=(20, 20, 8))
    return w.inp / "other" / "P2" / "mask.nii.gz", "mask"


def empty_mask(w: World) -> tuple[Path, str]:
    def edit(hdr, data):
        return np.zeros_like(data)
    return _with_header(w.path("P2", "mask"), edit), "mask"


def same_file_twice(w: World) -> tuple[Path, str]:
    return w.path("P2", "pre"), "early"


IMAGE_FAULTS: dict[str, Callable[[World], tuple[Path, str]]] = {
    "truncated-nii": truncated_nii,
    "truncated-gz-payload": truncated_gz_payload,
    "broken-gzip-stream": broken_gzip_stream,
    "nii-header-claims-2.7G-voxels": nii_memory_bomb,
    "mha-header-claims-2.7G-voxels": mha_memory_bomb,
    "fifo": fifo,
    "dev-zero": dev_zero,
    "4d-image": image_4d,
    "2d-image": image_2d,
    "zero-slice-spacing": _spacing(0.0),
    "negative-slice-spacing": _spacing(-2.2),
    "nan-slice-spacing": _spacing(float("nan")),
    "vector-image": vector_image,
    "garbage-bytes": garbage,
    "empty-file": empty_file,
    "missing-file": missing,
    "wrong-extension": wrong_extension,
    "symlink-loop": symlink_loop,
    "empty-folder": empty_folder,
    "nan-voxels": nan_voxels,
    "phase-on-other-grid": phase_on_other_grid,
    "mask-on-other-grid": mask_on_other_grid,
    "empty-mask": empty_mask,
    "same-file-for-two-phases": same_file_twice,
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fault", list(IMAGE_FAULTS))
def test_cohort_check_reports_image_fault(fault, w):
    path, what = IMAGE_FAULTS[fault](w)
    w.set_path("P2", what, path)
    manifest = w.write_manifest()
    res = w.run("cohort", "check", manifest, "--jobs", "1", "--out", w.out, "--strict")
    w.check(res, EXIT_PROBLEMS, "P2", path.name, QC_PASSING.format(n=3))
    problems = pd.read_csv(w.out / "qc_problems.csv")
    assert set(problems.loc[problems["severity"] == "error", "patient_id"]) == {"P2"}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fault", ["truncated-nii", "fifo", "zero-slice-spacing",
                                   "same-file-for-two-phases"])
def test_preprocess_excludes_and_counts_the_patient(fault, w):
    path, what = IMAGE_FAULTS[fault](w)
    w.set_path("P2", what, path)
    res = w.run("preprocess", w.write_manifest(), "--config", w.config(), "--out", w.out,
                "--jobs", "1", "--strict")
    w.check(res, EXIT_PROBLEMS, "P2", path.name, "1 excluded")
    done = pd.read_parquet(w.out / "preprocessed.parquet")
    assert sorted(done["patient_id"]) == ["P1", "P3", "P4"]
    problems = pd.read_csv(w.out / "preprocess_problems.csv")
    assert set(problems["patient_id"]) == {"P2"}


@pytest.mark.timeout(180)
def test_extract_lists_patient_excluded_upstream(w):
    path, what = truncated_nii(w)
    w.set_path("P2", what, path)
    res = w.run("extract", "radiomics", "--cohort", w.write_manifest(), "--config", w.config(),
                "--out", w.out, "--cache", w.cache, "--jobs", "1", "--strict")
    w.check(res, EXIT_PROBLEMS, "P2", "excluded")
    feats = pd.read_parquet(w.out / "features" / "radiomics.parquet")
    assert sorted(map(str, feats.index if "patient_id" not in feats else
                      feats["patient_id"])) == ["P1", "P3", "P4"]
    errors = pd.read_csv(w.out / "features" / "radiomics.errors.csv")
    assert "P2" in set(errors["patient_id"].astype(str))


# --------------------------------------------------------------------------- manifest faults
def _rows(edit: Callable[[list[dict]], None]) -> Callable[[World], None]:
    def make(w: World) -> None:
        edit(w.rows)
    return make


def _set(field: str, value):
    def edit(rows):
        rows[1][field] = value
    return edit


MANIFEST_FAULTS: dict[str, tuple[Callable[[World], None], int, tuple[str, ...]]] = {
    # name: (mutation, exit status with --strict, names the output must contain)
    "duplicate-id": (_rows(_set("patient_id", "P1")), EXIT_PROBLEMS, ("P1", "duplicate")),
    "id-dot-dot": (_rows(_set("patient_id", "../../escape")), EXIT_PROBLEMS, ("../../escape",)),
    "id-absolute": (_rows(_set("patient_id", "/tmp/wb-escape")), EXIT_PROBLEMS,
                    ("/tmp/wb-escape",)),
    "id-with-slash": (_rows(_set("patient_id", "a/b")), EXIT_PROBLEMS, ("a/b",)),
    "id-leading-dot": (_rows(_set("patient_id", ".hidden")), EXIT_PROBLEMS, (".hidden",)),
    "id-with-space": (_rows(_set("patient_id", "P 2")), EXIT_PROBLEMS, ("P 2",)),
    "label-yes": (_rows(_set("pcr", "yes")), EXIT_PROBLEMS, ("P2", "yes")),
    "label-two": (_rows(_set("pcr", 2)), EXIT_PROBLEMS, ("P2", "2")),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fault", list(MANIFEST_FAULTS))
def test_cohort_check_reports_manifest_fault(fault, w):
    mutate, code, names = MANIFEST_FAULTS[fault]
    mutate(w)
    res = w.run("cohort", "check", w.write_manifest(), "--jobs", "1", "--out", w.out,
                "--strict")
    w.check(res, code, *names)
    assert not Path("/tmp/wb-escape").exists()
    for pid in ("P3", "P4"):  # untouched rows still pass
        assert pid not in set(pd.read_csv(w.out / "qc_problems.csv")["patient_id"].astype(str))


@pytest.mark.timeout(60)
def test_manifest_without_mask_column_names_it_for_every_patient(w):
    pd.DataFrame(w.rows).drop(columns="mask").to_csv(w.manifest, index=False)
    res = w.run("cohort", "check", w.manifest, "--jobs", "1", "--out", w.out, "--strict")
    w.check(res, EXIT_PROBLEMS, "column 'mask'", *IDS)


WHOLE_TABLE_FAULTS: dict[str, Callable[[World], Path]] = {
    "manifest-empty-file": lambda w: (w.manifest.write_text(""), w.manifest)[1],
    "manifest-binary-garbage": lambda w: (w.manifest.write_bytes(bytes(range(256)) * 4),
                                          w.manifest)[1],
    "manifest-folder-without-manifest": lambda w: w.inp / "P1",
    "manifest-does-not-exist": lambda w: w.inp / "nope.csv",
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fault", list(WHOLE_TABLE_FAULTS))
def test_unreadable_cohort_table_is_one_message(fault, w):
    target = WHOLE_TABLE_FAULTS[fault](w)
    res = w.run("cohort", "check", target, "--jobs", "1", "--out", w.out)
    w.check(res, EXIT_USAGE, target.name)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("pid", ["../../escape", "/tmp/wb-escape-deep"])
def test_extract_deep_never_writes_outside_out(pid, w):
    w.rows[1]["patient_id"] = pid
    res = w.run("extract", "deep", "--cohort", w.write_manifest(), "--config", w.config(),
                "--out", w.out, "--cache", w.cache, "--jobs", "1", "--strict")
    assert res.code in (EXIT_PROBLEMS, EXIT_USAGE), res.text
    w.check(res, res.code, pid)
    assert not Path("/tmp/wb-escape-deep.png").exists()
    assert not any(Path("/tmp").glob("wb-escape-deep*"))


# --------------------------------------------------------------------------- configs
def _params(text: str) -> Callable[[World], Path]:
    def make(w: World) -> Path:
        p = w.root / "cfg" / "bad.yaml"
        p.parent.mkdir(exist_ok=True)
        p.write_text(text)
        return w.config(params=p)
    return make


CONFIG_FAULTS: dict[str, tuple[Callable[[World], Path], tuple[str, ...]]] = {
    "params-negative-bin-width": (_params(
        "version: 1\nsetting:\n  binWidth: -0.1\nimageType:\n  Original: {}\n"
        "featureClass:\n  firstorder:\n"), ("bad.yaml", "binWidth")),
    "params-unknown-feature-class": (_params(
        "version: 1\nsetting:\n  binWidth: 0.1\nimageType:\n  Original: {}\n"
        "featureClass:\n  firstordr:\n"), ("bad.yaml", "firstordr")),
    "params-file-missing": (lambda w: w.config(params=w.root / "cfg" / "absent.yaml"),
                            ("absent.yaml",)),
    "params-not-yaml": (_params("version: [1\n"), ("bad.yaml",)),
    "unknown-network": (lambda w: w.config(network="resnet5"), ("resnet5",)),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fault", list(CONFIG_FAULTS))
def test_config_check_validates_what_a_run_reads(fault, w):
    make, names = CONFIG_FAULTS[fault]
    cfg = make(w)
    res = w.run("config", "check", cfg)
    w.check(res, EXIT_USAGE, *names)


@pytest.mark.timeout(60)
def test_extract_fails_fast_on_bad_params_before_preprocessing(w):
    cfg = CONFIG_FAULTS["params-negative-bin-width"][0](w)
    res = w.run("extract", "radiomics", "--cohort", w.write_manifest(), "--config", cfg,
                "--out", w.out, "--cache", w.cache, "--jobs", "1")
    w.check(res, EXIT_USAGE, "bad.yaml", "binWidth")
    assert not list(w.cache.rglob("*.nii.gz")), "preprocessed before validating the config"


# --------------------------------------------------------------------------- run dirs, models
@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", ["model", "audit"])
def test_run_without_cohort_table_is_one_message(command, w):
    run = w.out / "run"
    (run / "features").mkdir(parents=True)
    res = w.run(command, "--run", run, "--config", w.config())
    w.check(res, EXIT_USAGE, "cohort")


@pytest.mark.timeout(60)
def test_report_of_a_folder_that_is_no_run(w):
    (w.out / "empty").mkdir(parents=True)
    res = w.run("report", w.out / "empty", "--out", w.out / "r.html")
    w.check(res, EXIT_USAGE, "empty")


@pytest.mark.timeout(60)
def test_unknown_headline_classifier_is_refused(w):
    (w.out / "run").mkdir(parents=True)
    res = w.run("model", "--run", w.out / "run", "--headline-classifier", "gbm")
    w.check(res, EXIT_USAGE, "gbm")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", ["preprocess", "cohort-check", "synth", "extract"])
def test_out_pointing_at_a_file_is_one_message(command, w):
    target = w.root / "cwd" / "taken.txt"
    target.write_text("mine\n")
    manifest = w.write_manifest()
    argv = {"preprocess": ["preprocess", manifest, "--config", w.config()],
            "cohort-check": ["cohort", "check", manifest],
            "synth": ["synth", "--n", "4", "--jobs", "1"],
            "extract": ["extract", "kinetic", "--cohort", manifest, "--config", w.config(),
                        "--cache", w.cache]}[command]
    res = w.run(*argv, "--out", target)
    w.check(res, EXIT_USAGE, "taken.txt")
    assert target.read_text() == "mine\n"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("model", ["text", "folder", "missing"])
def test_predict_with_an_unusable_model_file(model, w):
    path = {"text": w.root / "cwd" / "m.skops", "folder": w.inp / "P1",
            "missing": w.root / "cwd" / "absent.skops"}[model]
    if model == "text":
        path.write_text("not a model\n")
    res = w.run("predict", "--model", path, "--cohort", w.write_manifest(),
                "--out", w.out / "p.csv")
    w.check(res, EXIT_USAGE, path.name)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("jobs", ["0", "-3"])
def test_nonsense_worker_count_is_a_usage_error(jobs, w):
    res = w.run("cohort", "check", w.write_manifest(), "--jobs", jobs)
    w.check(res, EXIT_USAGE, "jobs")


@pytest.mark.timeout(120)
def test_synth_small_n(w):
    res = w.run("synth", "--n", "2", "--seed", "0", "--out", w.out, "--jobs", "1")
    assert res.code in (EXIT_OK, EXIT_USAGE), res.text
    w.check(res, res.code)
    if res.code == EXIT_USAGE:
        assert "--n" in res.text


@pytest.mark.timeout(120)
def test_console_script_prints_no_traceback_and_shows_it_with_verbose(w):
    """The real entry point, in a subprocess, for one per-patient and one whole-input fault."""
    path, what = truncated_nii(w)
    w.set_path("P2", what, path)
    exe = Path(sys.executable).parent / "workbench"
    quiet = subprocess.run([str(exe), "-q", "cohort", "check", str(w.write_manifest()),
                            "--jobs", "1", "--strict"], capture_output=True, text=True,
                           timeout=100, cwd=w.root / "cwd")
    assert quiet.returncode == EXIT_PROBLEMS and "Traceback" not in quiet.stderr
    assert "P2" in quiet.stdout and "pre.nii" in quiet.stdout
    bad = subprocess.run([str(exe), "-v", "report", str(w.inp / "P1")], capture_output=True,
                         text=True, timeout=100, cwd=w.root / "cwd")
    assert bad.returncode == EXIT_USAGE and "Traceback" in bad.stderr


@pytest.mark.timeout(60)
def test_voxel_cap_names_the_numbers(w):
    res = w.run("cohort", "check", w.write_manifest(), "--jobs", "1", "--max-voxels", "1000",
                "--out", w.out, "--strict")
    w.check(res, EXIT_PROBLEMS, "3,840", "1,000", *IDS, QC_PASSING.format(n=0))
