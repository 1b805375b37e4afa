"""Burned-in PHI: a de-identified bundle keeps only the 2D tissue regions' pixels (issue 12, item 1)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pydicom
import pytest

import msus
from conftest import DATA, ROOT
from msus.errors import ExportError
from msus.export import from_cine

EPIQ = DATA / "deiddata_GREYSCALE_CINE_epiq5g_27f.dcm"
ACUSON = DATA / "fodicom_DIRW0007_acuson_65f_jpegbaseline.dcm"
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _with_screen_region(tmp_path, *, keep_tissue=True):
    """The EPIQ cine with a whole-screen region of spatial format 0 / data type 0 (as many scanners write)."""
    ds = pydicom.dcmread(EPIQ)
    r = copy.deepcopy(ds.SequenceOfUltrasoundRegions[0])
    r.RegionLocationMinX0, r.RegionLocationMinY0 = 0, 0
    r.RegionLocationMaxX1, r.RegionLocationMaxY1 = ds.Columns - 1, ds.Rows - 1
    r.RegionSpatialFormat, r.RegionDataType = 0, 0
    regions = [r, ds.SequenceOfUltrasoundRegions[0]] if keep_tissue else [r]
    ds.SequenceOfUltrasoundRegions = regions
    out = tmp_path / "ZZZ_TEST_PATIENT_screen_region.dcm"
    ds.save_as(out)
    return out


def _tissue_mask(src):
    ds = pydicom.dcmread(src, stop_before_pixels=True)
    m = np.zeros((ds.Rows, ds.Columns), bool)
    for r in ds.SequenceOfUltrasoundRegions:
        if r.RegionSpatialFormat == 1 and r.RegionDataType in (1, 2):
            m[r.RegionLocationMinY0 : r.RegionLocationMaxY1 + 1, r.RegionLocationMinX0 : r.RegionLocationMaxX1 + 1] = True
    return m


def _bundle_pixels(src, tmp_path, **kw):
    from msus.export.bundle import write_bundle

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cine = msus.load(src)
    try:
        out = write_bundle(src, from_cine(cine), tmp_path / "b.zip", **kw)
    finally:
        cine.close()
    with zipfile.ZipFile(out) as z:
        z.extract("loop.dcm", tmp_path / "b")
    return pydicom.dcmread(tmp_path / "b" / "loop.dcm").pixel_array


def test_whole_screen_non_image_region_is_blacked_out(tmp_path):
    src = _with_screen_region(tmp_path)
    raw = pydicom.dcmread(src).pixel_array
    assert raw[:, :31].max() > 100  # the burned-in "ZZZ TEST PATIENT" banner is in the source
    px = _bundle_pixels(src, tmp_path)
    m = _tissue_mask(src)
    assert int((px[:, ~m] > 0).sum()) == 0  # not one pixel outside the tissue region survives
    assert np.array_equal(px[:, m], raw[:, m])  # the tissue region is kept as it was


def test_acuson_screen_region_keeps_only_the_2d_region(tmp_path):
    px = _bundle_pixels(ACUSON, tmp_path)
    m = _tissue_mask(ACUSON)
    assert m.sum() < m.size * 0.7  # region #1 (format 0) spans rows 32-431; only #2 is tissue
    assert int(px[:, ~m].max()) == 0 and px[:, m].max() > 0


def test_file_without_tissue_region_is_refused_unless_cropped(tmp_path):
    src = _with_screen_region(tmp_path, keep_tissue=False)
    with pytest.raises(ExportError, match="no 2D tissue ultrasound region.*--crop"):
        _bundle_pixels(src, tmp_path)
    px = _bundle_pixels(src, tmp_path, crop=(10, 31, 788, 592))
    assert px[:, :31].max() == 0 and px[:, 31:593, 10:789].max() > 0


def test_cli_refuses_then_accepts_an_explicit_crop(tmp_path):
    src = _with_screen_region(tmp_path, keep_tissue=False)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "msus", "export", str(src), "--format", "bundle", "--no-store"]
    r = subprocess.run([*cmd, "--out", str(tmp_path / "a.zip")], capture_output=True, text=True, env=env)
    assert r.returncode == 1 and r.stderr.count("msus: error:") == 1 and "--crop" in r.stderr, r.stderr
    r = subprocess.run([*cmd, "--out", str(tmp_path / "b.zip"), "--crop", "10,31,788,592"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([*cmd, "--out", str(tmp_path / "c.zip"), "--crop", "10,31"], capture_output=True, text=True, env=env)
    assert r.returncode == 1 and "X0,Y0,X1,Y1" in r.stderr


def test_app_bundle_download_name_never_carries_the_source_name(tmp_path):
    from msus.ui import export_panel

    src = _with_screen_region(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cine = msus.load(src)
    try:
        blob, name, _ = export_panel.build("bundle", cine, src)
        _, json_name, _ = export_panel.build("json", cine, src)
    finally:
        cine.close()
    assert name == "deid-bundle.zip" and "ZZZ" not in name and blob[:2] == b"PK"
    assert json_name.startswith("ZZZ_TEST_PATIENT")  # identified exports keep their name, as documented
