"""NIfTI header sanity warnings: empty header, qform/sform disagreement, slice axis first.

Tiny files with crafted headers (nibabel writes them; the module reads the raw bytes itself),
checked alone, through ``check_cohort`` and through ``workbench cohort check``: each finding is
one warning naming the patient and the file, the patient stays, and the exit status is 0 (also
with ``--strict``). Clean headers (SimpleITK-written, the synthetic cohort's) give none.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from fixtures.images import write_tiny_patient
from workbench.cohort.check import QC_CODE, check_cohort, format_report
from workbench.cohort.loaders.manifest import load_manifest
from workbench.imaging.nifti_header import nifti_header_warnings, read_nifti_header

EMPTY = ("spacing 1 x 1 x 1 mm and identity orientation come from an empty header "
         "(qform_code 0, sform_code 0), not from the scanner: shape features would be in "
         "voxels, not mm; fix the export (e.g. dcm2niix)")


def _affine(spacing=(0.8, 0.8, 2.2), origin=(10.0, -5.0, 30.0)) -> np.ndarray:
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = origin
    return affine


def _write(path: Path, shape=(8, 8, 4), *, qform=None, sform=None, scode=1, zooms=None,
           data=None) -> Path:
    """A NIfTI file with the given qform (code 1) / sform (``None``: code 0) and pixdim."""
    data = np.zeros(shape, np.int16) if data is None else data
    header = nib.Nifti1Header()
    header.set_data_dtype(data.dtype)
    header.set_data_shape(data.shape)
    if zooms is not None:
        header.set_zooms(zooms)
    if qform is not None:
        header.set_qform(qform, code=1)
    if sform is not None:
        header.set_sform(sform, code=scode)
    nib.save(nib.Nifti1Image(data, None, header=header), str(path))
    found = nib.load(str(path)).header  # nibabel writes what it was given
    assert (int(found["qform_code"]), int(found["sform_code"])) == (
        0 if qform is None else 1, 0 if sform is None else scode)
    return path


def _origin_shift(shift=5.0) -> np.ndarray:
    sform = _affine()
    sform[0, 3] += shift
    return sform


# ---------------------------------------------------------------- reading the raw header
@pytest.mark.parametrize("kind", ["nii", "nii.gz", "big-endian", "nifti2"])
def test_the_raw_header_reads_as_nibabel_reads_it(tmp_path, kind):
    rotation = np.linalg.qr(np.array([[2.0, 1, 0], [0.3, 2, 0.5], [0.1, 0.2, 3]]))[0]
    qform = np.eye(4)
    qform[:3, :3] = rotation * (0.7, 0.8, 2.5) * (1, 1, -1)  # oblique, left-handed (qfac -1)
    qform[:3, 3] = (-80.5, 12.25, 40.0)
    sform = qform.copy()
    sform[:3, 3] += 1.5
    cls = nib.Nifti2Image if kind == "nifti2" else nib.Nifti1Image
    header = nib.Nifti1Header().as_byteswapped(">") if kind == "big-endian" else None
    img = cls(np.zeros((6, 5, 4), np.int16), None, header=header)
    img.set_qform(qform, code=1)
    img.set_sform(sform, code=2)
    path = tmp_path / f"img.{'nii.gz' if kind == 'nii.gz' else 'nii'}"
    nib.save(img, str(path))
    found, expected = read_nifti_header(path), nib.load(str(path)).header
    assert found.version == (2 if kind == "nifti2" else 1)
    assert found.shape == (6, 5, 4)
    assert (found.qform_code, found.sform_code) == (1, 2)
    np.testing.assert_allclose(found.pixdim, expected.get_zooms(), rtol=1e-6)
    np.testing.assert_allclose(found.qform, expected.get_qform(), atol=1e-5)
    np.testing.assert_allclose(found.sform, expected.get_sform(), atol=1e-5)


def test_only_the_header_of_a_gzip_file_is_decompressed(tmp_path):
    full = _write(tmp_path / "full.nii", (64, 64, 64), qform=_affine(), sform=_affine())
    cut = tmp_path / "cut.nii.gz"  # a gzip stream that breaks long before the pixels end
    cut.write_bytes(gzip.compress(full.read_bytes())[:2000])
    found = read_nifti_header(cut)
    assert found is not None and found.shape == (64, 64, 64)
    np.testing.assert_allclose(found.qform, _affine(), atol=1e-5)


def test_files_that_are_not_nifti_give_no_header(tmp_path):
    image = sitk.Image(8, 8, 4, sitk.sitkInt16)
    for name in ("img.mha", "img.nrrd"):
        sitk.WriteImage(image, str(tmp_path / name))
        assert read_nifti_header(tmp_path / name) is None
        assert nifti_header_warnings(tmp_path / name) == []
    (tmp_path / "fake.nii").write_bytes(b"\0" * 600)
    assert read_nifti_header(tmp_path / "fake.nii") is None


# ---------------------------------------------------------------- the three warnings
def test_an_empty_header_is_warned_about(tmp_path):
    path = _write(tmp_path / "empty.nii.gz")
    assert sitk.ReadImage(str(path)).GetSpacing() == (1.0, 1.0, 1.0)
    assert nifti_header_warnings(path, what="phase 'pre'") == [f"phase 'pre': {EMPTY}"]
    real_spacing = _write(tmp_path / "spaced.nii.gz", zooms=(0.8, 0.8, 2.2))
    assert nifti_header_warnings(real_spacing) == []  # codes 0, but spacing from somewhere


@pytest.mark.parametrize(("scode", "used"), [(1, "sform"), (2, "qform")])
def test_a_qform_sform_origin_disagreement_says_which_one_simpleitk_used(tmp_path, scode, used):
    path = _write(tmp_path / "xform.nii.gz", qform=_affine(), sform=_origin_shift(), scode=scode)
    (message,) = nifti_header_warnings(path, what="phase 'early'")
    assert message.startswith(
        "phase 'early': the NIfTI qform and sform disagree in origin (origin qform (-10.0, 5.0, "
        "30.0) mm, sform (-15.0, 5.0, 30.0) mm; LPS, as SimpleITK reports them); SimpleITK "
        f"used the {used} for origin and direction (qform_code 1, sform_code {scode}; ")
    assert "fix the export so that both agree" in message
    # ITK's rule (sform only with sform_code 1 here), checked against what SimpleITK reads
    expected = (-15.0, 5.0, 30.0) if used == "sform" else (-10.0, 5.0, 30.0)
    assert sitk.ReadImage(str(path)).GetOrigin() == pytest.approx(expected)


def test_a_qform_sform_spacing_disagreement_names_the_spacing(tmp_path):
    sform = _affine(spacing=(0.8, 0.8, 3.0))
    path = _write(tmp_path / "spacing.nii", qform=_affine(), sform=sform)
    (message,) = nifti_header_warnings(path)
    assert message.startswith("image: the NIfTI qform and sform disagree in spacing (spacing "
                              "qform (0.8, 0.8, 2.2) mm, sform (0.8, 0.8, 3.0) mm; ")
    assert "SimpleITK takes the spacing from pixdim, as the qform does" in message
    assert sitk.ReadImage(str(path)).GetSpacing() == pytest.approx((0.8, 0.8, 2.2))


def test_a_qform_sform_direction_disagreement_names_the_direction(tmp_path):
    turn = np.eye(4)
    c, s = np.cos(np.radians(10)), np.sin(np.radians(10))
    turn[:2, :2] = [[c, -s], [s, c]]
    sform = turn @ _affine(origin=(0.0, 0.0, 0.0))
    path = _write(tmp_path / "turn.nii", qform=_affine(origin=(0.0, 0.0, 0.0)), sform=sform)
    (message,) = nifti_header_warnings(path)
    assert "disagree in direction (direction qform (-1.0, 0.0, 0.0, 0.0, -1.0, " in message
    assert "SimpleITK used the sform for origin and direction" in message


def test_a_slice_axis_first_is_warned_about_unless_it_points_superior_inferior(tmp_path):
    first = _affine(spacing=(5.0, 0.7, 0.7), origin=(0.0, 0.0, 0.0))
    path = _write(tmp_path / "first.nii.gz", (4, 64, 64), qform=first, sform=first)
    (message,) = nifti_header_warnings(path, what="tumour mask")
    assert message == (
        "tumour mask: the slice axis appears first: array axis i has 4 voxels 5 mm apart, "
        "axes j, k 64 x 64 voxels of 0.7 x 0.7 mm, and the header points i left-right; an "
        "export that stored an axial acquisition as (slices, rows, cols) looks like this, and "
        "geometry and resampling then treat the slice axis as in-plane (the volume lies "
        "rotated in space); re-export with the slices on the last axis (e.g. dcm2niix), unless "
        "this is a sagittal acquisition and the header's orientation is right")
    no_xform = _write(tmp_path / "zooms.nii", (4, 64, 64), zooms=(5.0, 0.7, 0.7))
    assert len(nifti_header_warnings(no_xform)) == 1  # codes 0: identity, i left-right
    axial = np.zeros((4, 4))  # the same array, its axis i pointing superior-inferior
    axial[:3, :3] = [[0, 0.7, 0], [0, 0, 0.7], [5.0, 0, 0]]
    axial[3, 3] = 1
    upright = _write(tmp_path / "upright.nii", (4, 64, 64), qform=axial, sform=axial)
    assert nifti_header_warnings(upright) == []
    last = _affine(spacing=(0.7, 0.7, 5.0))
    assert nifti_header_warnings(_write(tmp_path / "last.nii", (64, 64, 4), qform=last,
                                        sform=last)) == []


def test_clean_headers_give_no_warning(tmp_path):
    clean = _write(tmp_path / "clean.nii.gz", qform=_affine(), sform=_affine())
    assert nifti_header_warnings(clean) == []
    image = sitk.Image(8, 8, 4, sitk.sitkInt16)
    image.SetSpacing((0.7, 0.7, 2.0))
    image.SetOrigin((-80.0, 20.0, 5.0))
    sitk.WriteImage(image, str(tmp_path / "sitk.nii.gz"))
    assert nifti_header_warnings(tmp_path / "sitk.nii.gz", image=image) == []


@pytest.mark.timeout(120)
def test_the_synthetic_cohort_passes_without_warnings(tmp_path):
    from workbench.cohort.synthetic import generate_cohort

    report = check_cohort(load_manifest(generate_cohort(tmp_path, n=1, progress=False)),
                          jobs=1, progress=False)
    assert report.problems == []


def test_the_qc_cache_key_covers_this_module():
    assert "imaging" in QC_CODE  # code_digest hashes every module of imaging/, this one too


# ---------------------------------------------------------------- through cohort QC and the CLI
def _reheader(path: str, **xforms) -> None:
    _write(Path(path), data=np.asanyarray(nib.load(path).dataobj), **xforms)


def _warning_cohort(tmp_path: Path) -> Path:
    rows = []
    for i, pid in enumerate(("GOOD", "EMPTY", "XFORM")):
        paths = write_tiny_patient(tmp_path, pid, seed=i)
        rows.append({"patient_id": pid, "pcr": i % 2, "age": 50, "hr_her2": "HER2+", **paths})
    for path in (rows[1]["image_pre"], rows[1]["image_early"], rows[1]["image_late"],
                 rows[1]["mask"]):
        _reheader(path)  # spacing 1, origin 0, identity, codes 0: still one grid
    qform = nib.load(rows[2]["image_late"]).get_qform()
    sform = qform.copy()
    sform[0, 3] += 5.0
    _reheader(rows[2]["image_late"], qform=qform, sform=sform, scode=2)  # ITK: the qform
    csv = tmp_path / "manifest.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


@pytest.mark.timeout(120)
def test_cohort_qc_warns_naming_patient_and_file_and_keeps_the_patient(tmp_path):
    report = check_cohort(load_manifest(_warning_cohort(tmp_path)), jobs=1, progress=False)
    assert all(p.severity == "warning" and p.step == "header" for p in report.problems)
    found = {(p.patient_id, Path(p.file).name): p.message for p in report.problems}
    assert sorted(found) == [("EMPTY", "early.nii.gz"), ("EMPTY", "late.nii.gz"),
                             ("EMPTY", "mask.nii.gz"), ("EMPTY", "pre.nii.gz"),
                             ("XFORM", "late.nii.gz")]
    assert found["EMPTY", "pre.nii.gz"] == f"phase 'pre': {EMPTY}"
    assert found["EMPTY", "mask.nii.gz"] == f"tumour mask: {EMPTY}"
    assert found["XFORM", "late.nii.gz"].startswith(
        "phase 'late': the NIfTI qform and sform disagree in origin")
    assert "SimpleITK used the qform" in found["XFORM", "late.nii.gz"]
    assert report.ok_patients == ["GOOD", "EMPTY", "XFORM"]
    text = format_report(report)
    assert "problems               : 0 errors, 5 warnings" in text
    assert "  - WARNING: [patient EMPTY] header: phase 'pre': spacing 1 x 1 x 1 mm" in text


@pytest.mark.timeout(120)
def test_the_cli_prints_the_warnings_and_exits_0_also_when_strict(tmp_path, capsys):
    from workbench.cli import main

    csv = _warning_cohort(tmp_path)
    out = tmp_path / "qc"
    assert main(["-q", "cohort", "check", str(csv), "--jobs", "1", "--out", str(out)]) == 0
    assert main(["-q", "cohort", "check", str(csv), "--jobs", "1", "--strict"]) == 0
    printed = capsys.readouterr().out
    late = str(tmp_path / "XFORM" / "late.nii.gz")
    assert printed.count("  - WARNING: [patient XFORM] header: phase 'late': the NIfTI qform "
                         "and sform disagree in origin") == 2
    assert printed.count(f"(file {late})") == 2
    assert "passing image QC       : 3" in printed
    table = pd.read_csv(out / "qc_problems.csv")
    assert list(table["severity"]) == ["warning"] * 5
    assert set(table["step"]) == {"header"}
