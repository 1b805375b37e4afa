"""The bundled samples: open with plain pydicom / PyAV, carry correct calibration and timing,
agree with their ground truth, and regenerate byte-identically with ``msus samples``."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pydicom
import pytest

from msus import cli
from msus.samples import SAMPLES, US_MULTIFRAME_SOP_CLASS, get_spec
from msus.synth import render_frames

DICOM = [s for s in SAMPLES if s.fmt.startswith("dicom")]
REAL = ["fodicom_DIRW0007_acuson_65f_jpegbaseline.dcm", "pydicomdata_OBXXXX1A_rle_2frame_cx50.dcm"]


def _truth(samples_dir, spec):
    return json.loads((samples_dir / spec.truth_filename).read_text())


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_sample_and_truth_is_committed(samples_dir):
    for s in SAMPLES:
        assert (samples_dir / s.filename).is_file(), s.filename
        assert (samples_dir / s.truth_filename).is_file(), s.truth_filename
    for name in REAL:
        assert (samples_dir / name).is_file()
        assert name in (samples_dir / "NOTICE.md").read_text()


def test_total_size_is_small(samples_dir):
    total = sum(p.stat().st_size for p in samples_dir.iterdir() if p.is_file())
    assert total < 21 * 2**20


def test_the_set_covers_full_partial_intact_jpeg_and_mp4(samples_dir):
    kinds = {(s.params.tear, s.fmt) for s in SAMPLES}
    assert {("full", "dicom"), ("partial", "dicom"), ("none", "dicom"), ("full", "dicom-jpeg")} <= kinds
    assert any(s.fmt == "mp4" for s in SAMPLES)


@pytest.mark.parametrize("spec", DICOM, ids=lambda s: s.name)
def test_dicom_sample_header_matches_truth(spec, samples_dir):
    t = _truth(samples_dir, spec)
    tr = t["truth"]
    ds = pydicom.dcmread(samples_dir / spec.filename)
    assert ds.SOPClassUID == US_MULTIFRAME_SOP_CLASS == ds.file_meta.MediaStorageSOPClassUID
    assert ds.Modality == "US" and ds.Manufacturer == "msus phantom"
    assert str(ds.PatientName).startswith("PHANTOM^")
    assert int(ds.NumberOfFrames) == tr["n_frames"]
    assert (ds.Rows, ds.Columns) == (tr["rows"], tr["columns"])
    # timing
    assert float(ds.FrameTime) == pytest.approx(1000.0 / tr["fps"], rel=1e-4)
    assert ds.FrameIncrementPointer == 0x00181063
    assert int(ds.CineRate) == round(tr["fps"])
    # calibration: one 2D region in cm covering the image, delta = truth mm/px
    (r,) = ds.SequenceOfUltrasoundRegions
    assert r.RegionSpatialFormat == 1 and r.RegionDataType == 1
    assert r.PhysicalUnitsXDirection == 3 and r.PhysicalUnitsYDirection == 3
    assert r.PhysicalDeltaX * 10 == pytest.approx(tr["mm_per_px"]) and r.PhysicalDeltaY * 10 == pytest.approx(tr["mm_per_px"])
    assert (r.RegionLocationMinX0, r.RegionLocationMinY0) == (0, 0)
    assert (r.RegionLocationMaxX1, r.RegionLocationMaxY1) == (ds.Columns - 1, ds.Rows - 1)
    assert t["sop_instance_uid"] == ds.SOPInstanceUID and t["transfer_syntax"] == ds.file_meta.TransferSyntaxUID


def test_truth_says_what_each_sample_shows(samples_dir):
    for spec in SAMPLES:
        tr = _truth(samples_dir, spec)["truth"]
        assert tr["classification"] == spec.params.classification
        if spec.params.tear == "full":
            assert tr["gap_contraction_mm"] - tr["gap_rest_mm"] > 3
            assert tr["defect_thickness_fraction"] == 1.0
        elif spec.params.tear == "partial":
            assert tr["retraction_mm"] == pytest.approx(0.0, abs=1e-3)
            assert 0 < tr["defect_thickness_fraction"] < 1
        else:
            assert tr["gap_rest_mm"] is None and tr["defect_thickness_fraction"] == 0.0


def test_native_sample_pixels_are_the_simulated_frames(samples_dir):
    spec = get_spec("phantom_full_tear")
    ds = pydicom.dcmread(samples_dir / spec.filename)
    tr = _truth(samples_dir, spec)["truth"]
    i = tr["contraction_frame"]
    got = pydicom.pixels.pixel_array(ds, index=i)
    assert np.array_equal(got, render_frames(spec.params, [i])[0])


def test_jpeg_sample_decodes_close_to_the_uncompressed_frames(samples_dir):
    spec = get_spec("phantom_full_tear_tilted_jpeg")
    ds = pydicom.dcmread(samples_dir / spec.filename)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
    assert ds.PhotometricInterpretation == "YBR_FULL_422" and ds.SamplesPerPixel == 3 and ds.PlanarConfiguration == 0
    tr = _truth(samples_dir, spec)["truth"]
    idx = [tr["rest_frame"], tr["contraction_frame"]]
    ref = render_frames(spec.params, idx)
    for k, i in enumerate(idx):
        rgb = pydicom.pixels.pixel_array(ds, index=i)  # converted to RGB by pydicom
        assert rgb.shape == (ds.Rows, ds.Columns, 3)
        grey = rgb[:, :-12].astype(float).mean(axis=2)  # leave out the orange focus marker column
        err = np.abs(grey - ref[k][:, :-12])
        assert err.mean() < 4.0 and np.percentile(err, 99) < 20
    # the focus marker is orange (R > G > B), i.e. colours survive the YBR round trip
    rgb = pydicom.pixels.pixel_array(ds, index=0).astype(int)
    r, g, b = rgb[:, -2:].reshape(-1, 3).T
    sel = (r - b) > 100
    assert sel.sum() > 4 and np.all(r[sel] > g[sel]) and np.all(g[sel] > b[sel])


def test_mp4_sample_opens_with_pyav_and_matches_truth(samples_dir):
    import av

    spec = next(s for s in SAMPLES if s.fmt == "mp4")
    tr = _truth(samples_dir, spec)["truth"]
    with av.open(str(samples_dir / spec.filename)) as c:
        st = c.streams.video[0]
        assert (st.codec_context.width, st.codec_context.height) == (tr["columns"], tr["rows"])
        assert float(st.average_rate) == pytest.approx(tr["fps"], rel=1e-3)
        frames = [f.to_ndarray(format="gray") for f in c.decode(st)]
    assert len(frames) == tr["n_frames"]
    i = tr["contraction_frame"]
    ref = render_frames(spec.params, [i])[0].astype(float)
    # limited-range luma: compare after a linear fit, the pattern must match closely
    got = frames[i].astype(float)
    a, b = np.polyfit(got.ravel(), ref.ravel(), 1)
    assert np.abs(a * got + b - ref).mean() < 6.0


def test_msus_samples_regenerates_byte_identical_dicom(tmp_path, samples_dir, capsys):
    name = "phantom_intact"
    assert cli.main(["samples", "--out", str(tmp_path), "--only", name]) == 0
    spec = get_spec(name)
    for fn in (spec.filename, spec.truth_filename):
        assert _sha(tmp_path / fn) == _sha(samples_dir / fn), fn
    assert {p.name for p in tmp_path.iterdir()} == {spec.filename, spec.truth_filename}


def test_msus_samples_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["samples", "--out", str(tmp_path), "--only", "no_such_sample"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("msus: error: unknown sample") and err.count("\n") == 1
    f = tmp_path / "file"
    f.write_text("x")
    assert cli.main(["samples", "--out", str(f)]) == 1
    assert "not a folder" in capsys.readouterr().err


def test_msus_samples_list(capsys):
    assert cli.main(["samples", "--list"]) == 0
    out = capsys.readouterr().out
    for s in SAMPLES:
        assert s.filename in out


def test_default_folder_and_read_truth(samples_dir):
    from msus.samples import default_samples_dir, read_truth

    assert default_samples_dir() == samples_dir
    t = read_truth(samples_dir / "phantom_partial_tear.dcm")
    assert t["file"] == "phantom_partial_tear.dcm" and t["truth"]["classification"] == "partial"
    from msus.errors import MsusError

    with pytest.raises(MsusError) as exc:
        read_truth(samples_dir / "no_such.dcm")
    assert "no_such.truth.json" in str(exc.value)
