"""Calibration from ultrasound regions and spacings: mm only when it is known and unambiguous."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

import msus
from msus.calibration import (
    Calibration,
    Region,
    calibration_from_dataset,
    frame_calibrations_from_dataset,
    regions_from_dataset,
)
from msus.errors import CalibrationError, MeasurementError

DATA = Path(__file__).resolve().parent / "data"


def header(name):
    return pydicom.dcmread(DATA / name, stop_before_pixels=True)


def region_item(x0, y0, x1, y1, dx, dy, fmt=1, dtype=1, ux=3, uy=3):
    r = Dataset()
    r.RegionSpatialFormat, r.RegionDataType = fmt, dtype
    r.RegionLocationMinX0, r.RegionLocationMinY0, r.RegionLocationMaxX1, r.RegionLocationMaxY1 = x0, y0, x1, y1
    r.PhysicalUnitsXDirection, r.PhysicalUnitsYDirection = ux, uy
    r.PhysicalDeltaX, r.PhysicalDeltaY = dx, dy
    return r


def us_dataset(*regions, rows=400, cols=600, **elements):
    ds = Dataset()
    ds.Rows, ds.Columns = rows, cols
    ds.SequenceOfUltrasoundRegions = list(regions)
    for k, v in elements.items():
        setattr(ds, k, v)
    return ds


def test_scanner_caliper_on_rle_palette_file_within_1_percent():
    """The burned-in 'Cist Mag 1.06 cm' caliper: crosses at (459.5, 290.5) and (498.5, 301.5)."""
    cine = msus.load(DATA / "pydicomdata_OBXXXX1A_rle_2frame_cx50.dcm")
    d = cine.calibration.measure((459.5, 290.5), (498.5, 301.5))
    assert d.calibration_source == "us_region" and d.region_index == 0
    assert d.distance_mm == pytest.approx(10.6, rel=0.01)
    # region x1 = 800 on an 800-wide image: one past the last column is used, with a warning
    assert cine.calibration.warnings == (
        "ultrasound region #1 ends past the 800×600 image at x 800 (last column 799): "
        "an exclusive bound, or stale after a resize; the region is used",)


def test_spectral_region_never_gives_a_2d_length():
    cal = calibration_from_dataset(header("pydicomdata_OBXXXX1A_rle_2frame_cx50.dcm"))
    spectral = [r for r in cal.regions if not r.is_2d]
    assert spectral and spectral[0].spatial_format_name == "waveform"
    d = cal.measure((300, 540), (600, 560))  # inside the waveform strip only
    assert d.distance_mm is None and d.distance_px == pytest.approx(math.hypot(300, 20))
    assert any("outside every 2D" in w for w in d.warnings)


def test_dual_region_picks_region_under_click_and_refuses_across():
    cal = msus.load(DATA / "pydicomdata_gdcm-US-ALOKA-16_dualregion.dcm").calibration
    assert [r.is_2d for r in cal.regions] == [True, True, False]
    left = cal.measure((100, 100), (200, 100))
    right = cal.measure((400, 100), (500, 100))
    assert (left.region_index, right.region_index) == (0, 1)
    assert left.distance_mm == pytest.approx(100 * 0.3826530650258064)
    across = cal.measure((300, 100), (400, 100))
    assert across.distance_mm is None and across.region_index is None
    assert any("different ultrasound regions (#1 and #2)" in w for w in across.warnings)


def test_acuson_uses_2d_region_and_negative_delta_by_magnitude():
    cal = calibration_from_dataset(header("fodicom_DIRW0007_acuson_65f_jpegbaseline.dcm"))
    assert cal.source == "us_region" and len(cal.regions) == 2
    assert not cal.regions[0].is_calibrated_2d  # units 0: not a calibration
    r = cal.region_at(300, 200)
    assert r.index == 1 and r.delta_x < 0 and r.mm_per_px_x == pytest.approx(0.52478133506629575)
    d = cal.measure((100, 200), (200, 200))
    assert d.distance_mm == pytest.approx(52.478, rel=1e-4) and d.region_index == 1


def test_epiq_depth_scale_agrees_with_region():
    """Depth-scale ticks 10 mm apart sit 120.4 px apart (rows 70.5 → 190.5 ...)."""
    cal = msus.load(DATA / "deiddata_GREYSCALE_CINE_epiq5g_27f.dcm").calibration
    d = cal.measure((700, 70.5), (700, 190.5))
    assert d.distance_mm == pytest.approx(10.0, rel=0.01)


def test_stale_region_warns():
    cine = msus.load(DATA / "pydicom_examples_ybr_color_30f.dcm")
    assert any("does not fit the 320×240 image" in w for w in cine.calibration.warnings)
    d = cine.calibration.measure((100, 50), (150, 50))
    assert any("does not fit" in w for w in d.warnings)  # the warning travels with every length


def test_uncalibrated_j2k_reports_px_only_and_manual_fallback():
    cal = msus.load(DATA / "pydicomdata_US1_J2KR_logiq700_mskpreset.dcm").calibration
    assert cal.source == "none" and not cal.calibrated
    d = cal.measure((10, 10), (40, 50))
    assert d.distance_mm is None and d.distance_px == 50 and "uncalibrated" in d.label
    m = cal.with_fallback_manual(0.2)
    assert m.source == "manual" and m.measure((10, 10), (40, 50)).distance_mm == pytest.approx(10)
    region_cal = calibration_from_dataset(header("pydicomdata_OBXXXX1A_rle_2frame_cx50.dcm"))
    assert region_cal.with_fallback_manual(0.2) is region_cal  # never overrides the file


def test_non_square_pixels():
    cal = calibration_from_dataset(us_dataset(region_item(0, 0, 599, 399, 0.01, 0.02)))
    d = cal.measure((0, 0), (30, 40))
    assert d.mm_per_px_x == pytest.approx(0.1) and d.mm_per_px_y == pytest.approx(0.2)
    assert d.distance_mm == pytest.approx(math.hypot(3, 8))


def test_units_other_than_cm_are_not_mm():
    cal = calibration_from_dataset(us_dataset(region_item(0, 0, 599, 399, 0.01, 0.01, ux=3, uy=4)))
    assert cal.source == "none"
    assert cal.measure((0, 0), (10, 0)).distance_mm is None


def test_pixel_spacing_fallbacks_and_disagreement():
    ps = calibration_from_dataset(us_dataset(PixelSpacing=[0.2, 0.1]))
    assert (ps.source, ps.mm_per_px_x, ps.mm_per_px_y) == ("pixel_spacing", 0.1, 0.2)
    imager = calibration_from_dataset(us_dataset(ImagerPixelSpacing=[0.3, 0.3]))
    assert imager.source == "pixel_spacing" and "ImagerPixelSpacing" in imager.detail
    both = calibration_from_dataset(us_dataset(region_item(0, 0, 599, 399, 0.01, 0.01), PixelSpacing=[0.5, 0.5]))
    assert both.source == "us_region"
    assert any("disagrees with PixelSpacing" in w for w in both.warnings)
    agree = calibration_from_dataset(us_dataset(region_item(0, 0, 599, 399, 0.01, 0.01), PixelSpacing=[0.1, 0.1]))
    assert agree.warnings == ()


def test_per_frame_functional_groups():
    def group(sp):
        g, pm = Dataset(), Dataset()
        pm.PixelSpacing = sp
        g.PixelMeasuresSequence = [pm]
        return g

    ds = us_dataset()
    ds.SharedFunctionalGroupsSequence = [group([0.1, 0.1])]
    ds.PerFrameFunctionalGroupsSequence = [group([0.1, 0.1]), group([0.2, 0.2]), Dataset()]
    base = calibration_from_dataset(ds)
    assert base.source == "pixel_spacing" and base.mm_per_px_x == 0.1
    per = frame_calibrations_from_dataset(ds, 3)
    assert list(per) == [1] and per[1].mm_per_px_x == 0.2


def test_per_frame_calibration_reaches_the_cine(tmp_path):
    from pydicom.uid import generate_uid

    from test_io_dicom import gradient_frames, make_dataset, save

    pm0, pm1, g0, g1 = Dataset(), Dataset(), Dataset(), Dataset()
    pm0.PixelSpacing, pm1.PixelSpacing = [0.1, 0.1], [0.3, 0.3]
    g0.PixelMeasuresSequence, g1.PixelMeasuresSequence = [pm0], [pm1]
    ds = make_dataset(gradient_frames(2), PerFrameFunctionalGroupsSequence=[g0, g1], PixelSpacing=[0.1, 0.1],
                      SeriesInstanceUID=generate_uid())
    cine = msus.load(save(ds, tmp_path / "pf.dcm"))
    assert cine.calibration_for(0).mm_per_px_x == 0.1
    assert cine.calibration_for(1).mm_per_px_x == pytest.approx(0.3)


def test_damaged_regions_are_skipped_with_warnings():
    bad = region_item(0, 0, 599, 399, 0.01, 0.01)
    del bad.RegionLocationMaxX1
    regions, warnings = regions_from_dataset(us_dataset(bad, region_item(10, 10, 5, 5, 0.01, 0.01)))
    assert regions == () and len(warnings) == 2


def test_manual_two_point_and_errors():
    cal = Calibration.from_two_points((0, 0), (0, 120), 10)
    assert cal.source == "manual" and cal.mm_per_px_y == pytest.approx(10 / 120)
    with pytest.raises(CalibrationError):
        Calibration.from_two_points((0, 0), (0, 1), 10)
    with pytest.raises(CalibrationError):
        Calibration.manual(-1)
    with pytest.raises(MeasurementError):
        cal.measure((0, float("nan")), (1, 1))


def test_region_index_and_to_dict():
    r = Region(index=0, x0=1, y0=2, x1=3, y1=4, delta_x=-0.01, delta_y=0.02)
    d = r.to_dict()
    assert d == {"index": 0, "x0": 1, "y0": 2, "x1": 3, "y1": 4, "mm_per_px_x": 0.1, "mm_per_px_y": 0.2,
                 "spatial_format": "2D", "data_type": 1}
    cal = Calibration(source="us_region", regions=(r,))
    assert "#1" in cal.badge()
