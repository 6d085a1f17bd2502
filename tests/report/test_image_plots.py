"""Image figures: a patient's phases on the largest tumour slice, at physical scale, and the
deep-feature stage's crop strips; the readers that hand them their arrays."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import pytest
from bokeh.models import Image

from fixtures.images import write_tiny_patient
from workbench.errors import ImageError, WorkbenchError
from workbench.imaging.slices import read_rgb_images, row_tumour_slices
from workbench.plots import PlotInputError
from workbench.plots.images import crop_strips, tumour_slice


def images_of(layout) -> list:
    fig = hv.render(layout, backend="bokeh")
    return [(f.title.text, r.glyph) for f, *_ in fig.children for r in f.renderers
            if isinstance(r.glyph, Image)]


def test_tumour_slice_draws_each_phase_on_the_largest_slice_in_mm(tmp_path):
    paths = write_tiny_patient(tmp_path, "P1", shape=(24, 20, 8), spacing=(0.8, 0.5, 2.2))
    row = pd.Series({"patient_id": "P1", **paths})
    slices = row_tumour_slices(row, ["pre", "early"])
    assert slices.spacing == pytest.approx((0.5, 0.8)) and slices.index == 3
    layout = tumour_slice(slices, title="raw")
    assert len(layout) == 2
    image = layout.Overlay.I.Image.I
    assert image.bounds.lbrt() == pytest.approx((0, 0, 24 * 0.8, 20 * 0.5))
    assert image.data.shape == (20, 24)  # rows y, columns x
    outline = layout.Overlay.I.Points.I
    assert len(outline) > 0
    drawn = images_of(layout)
    # slices 2-5 tie on area: the one nearest the tumour centre (3.5), lower on a tie
    assert [t for t, _ in drawn] == ["P1 — raw pre (slice 3)", "P1 — raw early (slice 3)"]
    # each panel keeps its own grey scale (the early phase is brighter in the tumour)
    highs = [g.color_mapper.high for _, g in drawn]
    assert highs[1] > highs[0]


def test_tumour_slices_name_the_missing_path_and_the_patient(tmp_path):
    paths = write_tiny_patient(tmp_path, "P2")
    row = {"patient_id": "P2", **paths, "image_late": None}
    with pytest.raises(ImageError, match=r"P2.*image_late"):
        row_tumour_slices(row, ["pre", "late"])


def test_tumour_slice_refuses_what_is_not_slices(tmp_path):
    with pytest.raises(PlotInputError, match="read_tumour_slices"):
        tumour_slice({"patient_id": "P2"})
    slices = row_tumour_slices({"patient_id": "P2", **write_tiny_patient(tmp_path, "P2")},
                               ["pre"])
    bad = type(slices)(slices.patient_id, {"pre": np.zeros((2, 2))}, slices.mask,
                       slices.spacing, slices.axis, slices.index, slices.area)
    with pytest.raises(PlotInputError, match=r"P2.*'pre'.*grid"):
        tumour_slice(bad)


def test_tumour_slice_on_an_empty_mask_names_the_patient(tmp_path):
    import SimpleITK as sitk

    paths = write_tiny_patient(tmp_path, "P3")
    mask = sitk.ReadImage(paths["mask"])
    empty = sitk.GetImageFromArray(np.zeros_like(sitk.GetArrayFromImage(mask)))
    empty.CopyInformation(mask)
    sitk.WriteImage(empty, paths["mask"])
    with pytest.raises(WorkbenchError, match="empty") as info:
        row_tumour_slices({"patient_id": "P3", **paths}, ["pre"])
    assert "P3" in str(info.value)


def test_crop_strips_load_the_png_files(tmp_path):
    from PIL import Image as PILImage

    strip = np.zeros((20, 84, 3), np.uint8)
    strip[:, :20] = 255
    PILImage.fromarray(strip, "RGB").save(tmp_path / "SYN0001.png")
    strips = read_rgb_images([tmp_path / "SYN0001.png"])
    assert list(strips) == ["SYN0001"] and strips["SYN0001"].shape == (20, 84, 3)
    layout = crop_strips(strips)
    assert layout.RGB.I.bounds.lbrt() == pytest.approx((-2.1, -0.5, 2.1, 0.5))
    assert len(layout) == 1
    fig = hv.render(layout, backend="bokeh")
    assert fig.children[0][0].title.text == "SYN0001 — CNN input and phases"


def test_crop_strips_name_the_missing_files(tmp_path):
    with pytest.raises(ImageError, match="features/crops"):
        read_rgb_images([tmp_path / "absent.png"])
    with pytest.raises(PlotInputError, match="no crop image"):
        crop_strips({})
    with pytest.raises(PlotInputError, match="not RGB"):
        crop_strips({"P1": np.zeros((4, 4))})
