"""Exports: JSON/CSV, DICOM SR (highdicom + dcmtk), MP4/GIF, PDF, de-identification, bundle, CLI."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pydicom
import pytest

import msus
from conftest import DATA, ROOT, SAMPLES, require_binary
from msus.errors import ExportError
from msus.export import ExportData, from_cine, gather
from msus.measure import LABEL_CONTRACTION, LABEL_REST, make_measurement
from msus.store import open_store

DEID_FILE = DATA / "deiddata_GREYSCALE_CINE_epiq5g_27f.dcm"
FODICOM = DATA / "fodicom_DIRW0007_acuson_65f_jpegbaseline.dcm"

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _load(path):
    if not path.exists():
        pytest.fail(f"test data missing: {path}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return msus.load(path)


@pytest.fixture(scope="module")
def deid_cine():
    c = _load(DEID_FILE)
    yield c
    c.close()


def _reviewed(cine, rest=2, con=8) -> ExportData:
    """Two calibrated calipers, one uncalibrated, and a final finding by a named reviewer."""
    a = make_measurement(cine.calibration_for(rest), rest, (300, 300), (372, 300), label=LABEL_REST, reviewer="Dr Alice Example")
    b = make_measurement(cine.calibration_for(con), con, (290, 310), (410, 318), label=LABEL_CONTRACTION, reviewer="Dr Alice Example")
    off = make_measurement(cine.calibration_for(con), con, (2, 2), (8, 5), label="outside", reviewer="Dr Bob Example")
    finding = {
        "classification": "suspected_full_thickness", "rest_frame": rest, "contraction_frame": con,
        "gap_rest_mm": a.length_mm, "gap_contraction_mm": b.length_mm, "retraction_mm": b.length_mm - a.length_mm,
        "defect_thickness_fraction": 1.0, "reasons": ["defect spans 100 % of the muscle thickness"],
        "status": "final", "kind": "manual", "reviewer": "Dr Alice Example",
    }
    outline = ((300, 280), (380, 280), (380, 330), (300, 330))
    return from_cine(cine, measurements=(a, b, off), finding=finding, outlines_px={rest: outline})


# ---- JSON / CSV --------------------------------------------------------------------------------------
def test_json_and_csv_carry_units_and_provenance(tmp_path, deid_cine):
    from msus.export.tables import CSV_COLUMNS, write_csv, write_json

    data = _reviewed(deid_cine)
    doc = json.loads(write_json(data, tmp_path / "x.json").read_text())
    assert doc["automatic"] is False and doc["units"]["length_mm"].startswith("mm")
    m0, _, off = doc["measurements"]
    assert m0["calibration_source"] == "us_region" and m0["region_index"] == 0
    assert m0["length_mm"] == pytest.approx(72 * 0.083078, rel=1e-3)
    assert off["length_mm"] is None and off["warnings"]  # outside the region: px only, said so
    assert doc["finding"]["classification"] == "suspected_full_thickness"
    assert doc["finding"]["disclaimer"] == "flag for review, not a diagnosis"
    rows = list(csv.DictReader(io.StringIO(write_csv(data, tmp_path / "x.csv").read_text())))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    assert [r["record"] for r in rows] == ["measurement"] * 3 + ["finding"]
    assert rows[2]["length_mm"] == "" and float(rows[2]["length_px"]) == pytest.approx(np.hypot(6, 3))
    assert float(rows[3]["retraction_mm"]) == pytest.approx(doc["finding"]["retraction_mm"])


def test_gather_prefers_the_store(tmp_path, deid_cine):
    store = open_store(f"sqlite:///{tmp_path / 's.sqlite3'}")
    data = _reviewed(deid_cine)
    for m in data.measurements:
        store.add_measurement(deid_cine, m)
    f = store.save_finding(deid_cine, data.finding, reviewer="Dr Alice Example")
    got = gather(deid_cine, store, analyze=False)
    assert not got.automatic and len(got.measurements) == 3
    assert got.finding["id"] == f.id and got.finding["status"] == "draft"
    assert set(got.reviewers) == {"Dr Alice Example", "Dr Bob Example"}
    empty = gather(_load(FODICOM), store, analyze=False)
    assert empty.measurements == () and empty.finding is None
    store.close()


# ---- DICOM SR ----------------------------------------------------------------------------------------
def _check_sr(path, data, source_ds):
    import highdicom as hd

    sr = hd.sr.srread(path)
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    groups = sr.content.get_image_measurement_groups()
    calibrated = [m for m in data.measurements if m.length_mm is not None]
    assert len(groups) == len(calibrated) + 1
    for g, m in zip(groups, calibrated):
        (num,) = g.get_measurements()
        assert num.name.meaning == "Length"
        assert num.unit.value == "mm" and num.unit.scheme_designator == "UCUM"
        assert num.value == pytest.approx(m.length_mm, rel=1e-6)
        ref = num.referenced_images[0]
        assert ref.referenced_sop_instance_uid == source_ds.SOPInstanceUID
        assert list(ref.referenced_frame_numbers) == [m.frame_index + 1]
    fg = groups[-1]
    (qe,) = fg.get_qualitative_evaluations()
    assert qe.value.value == data.finding["classification"]
    assert {n.name.meaning for n in fg.get_measurements()} >= {"Muscle gap at rest", "Muscle gap at contraction"}
    return sr


def test_sr_reads_back_with_highdicom_and_dsrdump(tmp_path, deid_cine):
    from msus.export.sr import write_sr

    dsrdump = require_binary("dsrdump", "dcmtk")
    data = _reviewed(deid_cine)
    out = write_sr(data, DEID_FILE, tmp_path / "sr.dcm")
    _check_sr(out, data, pydicom.dcmread(DEID_FILE, stop_before_pixels=True))
    r = subprocess.run([dsrdump, "-Ee", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "Comprehensive 3D SR" in r.stdout and "Imaging Measurement Report" in r.stdout
    assert re.search(r'NUM:\(,,"Length"\)="[\d.]+" \(mm,UCUM', r.stdout)
    assert "suspected_full_thickness,99MSUS" in r.stdout
    assert "(USm image,,3)" in r.stdout  # frame 3 (1-based) of the referenced instance


def test_sr_on_file_with_stray_delimiter_and_refusals(tmp_path):
    from msus.export.sr import write_sr

    c = _load(FODICOM)
    data = _reviewed(c, rest=1, con=3)
    out = write_sr(data, FODICOM, tmp_path / "sr.dcm")
    _check_sr(out, data, pydicom.dcmread(FODICOM, stop_before_pixels=True))
    with pytest.raises(ExportError, match="nothing to put"):
        write_sr(from_cine(c), FODICOM, tmp_path / "empty.dcm")
    with pytest.raises(ExportError, match="DICOM"):
        write_sr(data, SAMPLES / "phantom_full_tear_tilted.mp4", tmp_path / "v.dcm")


# ---- video and report ----------------------------------------------------------------------------------
def test_mp4_keeps_timing_range_and_burns_annotations(tmp_path, deid_cine):
    import av

    from msus.export.video import write_mp4

    data = _reviewed(deid_cine)
    out = write_mp4(deid_cine, data, tmp_path / "a.mp4", start=1, stop=11)
    with av.open(str(out)) as ct:
        s = ct.streams.video[0]
        assert s.codec_context.name == "h264"
        frames = list(ct.decode(s))
    assert len(frames) == 10
    t = np.array([float(f.pts * f.time_base) * 1000 for f in frames])
    want = deid_cine.frame_times_ms[1:11] - deid_cine.frame_times_ms[1]
    assert np.allclose(t, want, atol=1.5)
    rgb = frames[1].to_ndarray(format="rgb24")  # frame index 2: the rest caliper, bold, cyan
    raw = deid_cine.frame(2)
    row = rgb[300, 310:360].astype(int)
    assert (row[:, 2] - row[:, 0]).mean() > 80  # blue-ish caliper line where the image is grey
    assert abs(int(rgb[450, 500].mean()) - int(raw[450, 500])) < 25  # elsewhere the image itself
    with pytest.raises(ExportError, match="frame range"):
        write_mp4(deid_cine, data, tmp_path / "b.mp4", start=5, stop=500)


def test_gif_frames_and_delays(tmp_path, deid_cine):
    from PIL import Image

    from msus.export.video import write_gif

    out = write_gif(deid_cine, _reviewed(deid_cine), tmp_path / "a.gif", stop=6, max_width=400)
    im = Image.open(out)
    assert im.n_frames == 6 and im.size == (400, 300)
    assert im.info["duration"] == 30  # 33.3 ms → 30 ms (GIF has 10 ms steps)


def test_pdf_report_is_one_page(tmp_path, deid_cine):
    from msus.export.report import write_pdf

    blob = write_pdf(deid_cine, _reviewed(deid_cine), tmp_path / "r.pdf").read_bytes()
    assert blob.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type /Page[^s]", blob)) == 1
    assert len(re.findall(rb"/Subtype /Image", blob)) == 2  # rest and contraction side by side


# ---- de-identification and bundle ---------------------------------------------------------------------------
def _phi_strings(path) -> set[str]:
    """Identifying strings of a source header: names, IDs, dates, institution, UIDs, private text."""
    from msus.export.deid import strip_stray_elements
    from msus.meta import PHI_KEYWORDS

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    strip_stray_elements(ds)
    out: set[str] = set()

    def visit(d):
        for el in d:
            if el.VR == "SQ":
                for item in el.value:
                    visit(item)
                continue
            if el.VR not in ("PN", "LO", "SH", "LT", "ST", "UT", "DA", "DT", "TM", "UI", "CS", "IS"):
                continue
            if not (el.keyword in PHI_KEYWORDS or el.VR in ("PN", "DA", "DT", "TM") or el.tag.is_private):
                continue
            vals = el.value if isinstance(el.value, (list, pydicom.multival.MultiValue)) else [el.value]
            for v in vals:
                for part in re.split(r"[\^\\\r\n]", str(v)):
                    part = part.strip()
                    if len(part) >= 6 and not part.startswith("1.2.840.10008."):
                        out.add(part)

    visit(ds)
    return out


def _header_bytes(path) -> bytes:
    raw = path.read_bytes()
    ds = pydicom.dcmread(path)
    if "PixelData" in ds:
        i = raw.rfind(bytes.fromhex("e07f1000"))
        return raw[:i]
    return raw


def test_deidentify_file_with_stray_delimiter(tmp_path):
    from msus.export.deid import deidentify_file

    before = hashlib.sha256(FODICOM.read_bytes()).hexdigest()
    out = deidentify_file(FODICOM, tmp_path)
    assert hashlib.sha256(FODICOM.read_bytes()).hexdigest() == before  # source untouched
    src = pydicom.dcmread(FODICOM, stop_before_pixels=True)
    ds = pydicom.dcmread(out)
    assert ds.PatientIdentityRemoved == "YES" and ds.PatientName == ""
    assert ds.SOPInstanceUID != src.SOPInstanceUID and ds.StudyInstanceUID != src.StudyInstanceUID
    px = ds.pixel_array
    assert px.shape == (65, 456, 576, 3)
    mask = np.zeros(px.shape[1:3], bool)
    for reg in ds.SequenceOfUltrasoundRegions:
        mask[reg.RegionLocationMinY0 : reg.RegionLocationMaxY1 + 1, reg.RegionLocationMinX0 : reg.RegionLocationMaxX1 + 1] = True
    assert px[:, ~mask].max() == 0 and px[:, mask].max() > 0
    hb = _header_bytes(out)
    for s in _phi_strings(FODICOM):
        assert s.encode() not in hb, s
    a, b = _load(FODICOM), _load(out)  # timing and calibration survive de-identification
    assert np.allclose(a.frame_times_ms, b.frame_times_ms) and b.timing_source == a.timing_source
    assert b.calibration.measure((100, 100), (200, 100)) == a.calibration.measure((100, 100), (200, 100))


def test_deidentify_refuses_files_without_regions(tmp_path):
    from msus.export.deid import deidentify_file

    with pytest.raises(ExportError, match="no ultrasound regions"):
        deidentify_file(DATA / "pydicomdata_US1_J2KR_logiq700_mskpreset.dcm", tmp_path)


def test_bundle_leaves_no_phi_and_keeps_uids_consistent(tmp_path, deid_cine):
    import av
    import highdicom as hd

    from msus.export.bundle import pseudonymise, write_bundle
    from msus.export.deid import UidMap
    from msus.export.overlay import annotate

    data = _reviewed(deid_cine)
    out = write_bundle(DEID_FILE, data, tmp_path / "case.zip")
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        z.extractall(tmp_path / "case")
    case = tmp_path / "case"
    assert {"loop.dcm", "sr.dcm", "findings.json", "findings.csv", "annotated.mp4", "manifest.json"} <= names
    phi = _phi_strings(DEID_FILE) | {"ZZZ TEST PATIENT", "Dr Alice Example", "Dr Bob Example", DEID_FILE.name}
    assert "ZZZ TEST PATIENTFIVE" in phi and "10101010101" in phi and "KILLEEN" in phi
    for f in sorted(case.iterdir()):
        blob = _header_bytes(f) if f.suffix == ".dcm" else f.read_bytes()
        for s in phi:
            assert s.encode() not in blob, f"{s!r} survives in {f.name}"
    # burned-in banner: every pixel outside the ultrasound region is black
    loop = pydicom.dcmread(case / "loop.dcm")
    px = loop.pixel_array
    r = loop.SequenceOfUltrasoundRegions[0]
    mask = np.zeros(px.shape[1:], bool)
    mask[r.RegionLocationMinY0 : r.RegionLocationMaxY1 + 1, r.RegionLocationMinX0 : r.RegionLocationMaxX1 + 1] = True
    src = deid_cine.frame(0)
    assert src[:31].max() > 100  # the source does have the banner …
    assert px[:, ~mask].max() == 0  # … the bundle does not
    assert np.array_equal(px[0][mask], src[mask])
    # the video is rendered from the cleaned frames: the banner rows hold only msus's own overlay
    with av.open(str(case / "annotated.mp4")) as ct:
        first = next(ct.decode(video=0)).to_ndarray(format="rgb24")
    expect = annotate(np.zeros_like(src), 0, pseudonymise(data, UidMap(), ("1", "2", "3")), time_ms=0.0)
    assert np.abs(first[:28].astype(int) - expect[:28].astype(int)).mean() < 6
    # one set of new UIDs across the bundle
    doc = json.loads((case / "findings.json").read_text())
    assert doc["loop"]["key"] == loop.SOPInstanceUID and doc["loop"]["study_key"] == loop.StudyInstanceUID
    assert {m["reviewer"] for m in doc["measurements"]} == {"reviewer 1", "reviewer 2"}
    sr = hd.sr.srread(case / "sr.dcm")
    assert sr.StudyInstanceUID == loop.StudyInstanceUID and sr.PatientName == ""
    ref = sr.content.get_image_measurement_groups()[0].get_measurements()[0].referenced_images[0]
    assert ref.referenced_sop_instance_uid == loop.SOPInstanceUID
    src_ds = pydicom.dcmread(DEID_FILE, stop_before_pixels=True)
    assert loop.SOPInstanceUID != src_ds.SOPInstanceUID


# ---- CLI -----------------------------------------------------------------------------------------------------
def _cli(*args, env=None):
    e = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "msus", "export", *map(str, args)], capture_output=True, text=True, env=e)


def test_cli_exports_store_content_or_automatic_analysis(tmp_path):
    src = SAMPLES / "phantom_full_tear.dcm"
    if not src.exists():
        pytest.fail("samples/phantom_full_tear.dcm missing (run `msus samples`)")
    env = {"MSUS_DATA_DIR": str(tmp_path / "data")}
    r = _cli(src, "--format", "json", "--out", tmp_path / "auto.json", env=env)
    assert r.returncode == 0, r.stderr
    auto = json.loads((tmp_path / "auto.json").read_text())
    assert auto["automatic"] is True and auto["finding"]["kind"] == "automatic"
    assert auto["finding"]["classification"] in ("suspected_full_thickness", "partial", "no_defect")
    assert all(m["kind"] == "automatic" for m in auto["measurements"])
    # now a reviewer saves a caliper: the export shows the store's content
    cine = _load(src)
    store = open_store(f"sqlite:///{tmp_path / 'data' / 'msus.sqlite3'}")
    store.add_measurement(cine, make_measurement(cine.calibration, 3, (100, 100), (150, 100), label=LABEL_REST), reviewer="Dr C")
    store.close()
    r = _cli(src, "-f", "csv", "-o", tmp_path / "m.csv", env=env)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(tmp_path / "m.csv")))
    assert len(rows) == 1 and rows[0]["reviewer"] == "Dr C" and rows[0]["automatic"] == "False"
    assert "from the store" in r.stdout


def test_cli_errors_are_one_line(tmp_path):
    r = _cli(SAMPLES / "phantom_full_tear_tilted.mp4", "-f", "sr", "-o", tmp_path / "x.dcm", "--no-store")
    assert r.returncode == 1 and r.stderr.startswith("msus: error:") and r.stderr.count("\n") == 1
    assert "Traceback" not in r.stderr
    r = _cli(tmp_path / "missing.dcm", "-f", "json", "-o", tmp_path / "x.json")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    r = _cli(DEID_FILE, "-f", "json", "-o", DEID_FILE)
    assert r.returncode == 1 and "never modifies" in r.stderr
