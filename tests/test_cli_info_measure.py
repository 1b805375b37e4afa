"""`msus info` and `msus measure`: JSON keys as documented, exit codes, no PHI, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from msus.cli import main

DATA = Path(__file__).resolve().parent / "data"
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
RLE = DATA / "pydicomdata_OBXXXX1A_rle_2frame_cx50.dcm"
ALOKA = DATA / "pydicomdata_gdcm-US-ALOKA-16_dualregion.dcm"
J2K = DATA / "pydicomdata_US1_J2KR_logiq700_mskpreset.dcm"
ACUSON = DATA / "fodicom_DIRW0007_acuson_65f_jpegbaseline.dcm"

INFO_KEYS = {"kind", "frames", "rows", "columns", "samples_per_pixel", "fps", "frame_times_ms", "photometric",
             "transfer_syntax", "calibration", "warnings"}
REGION_KEYS = {"index", "x0", "y0", "x1", "y1", "mm_per_px_x", "mm_per_px_y", "spatial_format", "data_type"}
MEASURE_KEYS = {"distance_mm", "distance_px", "calibration_source", "region_index", "warnings"}


def run_json(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def cli(*argv):
    return subprocess.run([sys.executable, "-m", "msus", *map(str, argv)], capture_output=True, text=True)


def test_info_json_keys_and_figures(capsys):
    d = run_json(capsys, "info", str(ACUSON), "--json")
    assert INFO_KEYS <= set(d) and {"source", "regions", "warnings"} <= set(d["calibration"])
    assert (d["kind"], d["frames"], d["rows"], d["columns"], d["samples_per_pixel"]) == ("dicom", 65, 456, 576, 3)
    assert d["photometric"] == "YBR_FULL_422" and d["transfer_syntax"] == "1.2.840.10008.1.2.4.50"
    assert len(d["frame_times_ms"]) == 65 and d["frame_times_ms"][0] == 0 and d["frame_times_ms"][2] == 83.333
    assert d["calibration"]["source"] == "us_region"
    for r in d["calibration"]["regions"]:
        assert set(r) >= REGION_KEYS
    assert d["calibration"]["regions"][1]["mm_per_px_x"] == pytest.approx(0.5248, abs=1e-4)


def test_info_null_timing_and_top_level_warnings(capsys):
    d = run_json(capsys, "info", str(RLE), "--json")
    assert d["frame_times_ms"] is None and d["fps"] == pytest.approx(30)
    d = run_json(capsys, "info", str(DATA / "pydicom_examples_ybr_color_30f.dcm"), "--json")
    assert any("does not fit" in w for w in d["warnings"]) and d["calibration"]["warnings"]


def test_info_human_output_has_no_phi(capsys):
    ds = pydicom.dcmread(ACUSON, stop_before_pixels=True)
    assert main(["info", str(ACUSON)]) == 0
    out = capsys.readouterr().out
    assert "65 frame(s)" in out and "0.5248" in out
    for kw in ("PatientName", "PatientID", "InstitutionName", "StudyDate"):
        v = str(ds.get(kw, "") or "")
        if len(v) > 2:
            assert v not in out, kw


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.dcm")) + sorted(SAMPLES.glob("*.mp4")),
                         ids=lambda p: p.name)
def test_info_on_every_sample_matches_its_truth_or_header(capsys, path):
    d = run_json(capsys, "info", str(path), "--json")
    truth_file = path.with_suffix(".truth.json")
    if truth_file.exists():
        doc = json.loads(truth_file.read_text())
        t = doc["truth"]
        assert (d["frames"], d["rows"], d["columns"]) == (t["n_frames"], t["rows"], t["columns"])
        assert d["fps"] == pytest.approx(t["fps"], rel=1e-3)
        assert d["frame_times_ms"][1] == pytest.approx(1000 / t["fps"], rel=1e-3)
        assert d["calibration"]["source"] == doc["calibration"]["source"]
        if doc["calibration"]["source"] == "us_region":
            r = d["calibration"]["regions"][0]
            assert r["mm_per_px_x"] == pytest.approx(t["mm_per_px"]) and r["mm_per_px_y"] == pytest.approx(t["mm_per_px"])
        if doc.get("transfer_syntax"):
            assert d["transfer_syntax"] == doc["transfer_syntax"] and d["photometric"] == doc["photometric"]
    else:  # a bundled real file: compare with its header
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert (d["frames"], d["rows"], d["columns"]) == (int(ds.get("NumberOfFrames", 1)), ds.Rows, ds.Columns)
        assert d["transfer_syntax"] == ds.file_meta.TransferSyntaxUID


def test_measure_rle_scanner_caliper(capsys):
    d = run_json(capsys, "measure", str(RLE), "--frame", "0", "--p1", "459.5,290.5", "--p2", "498.5,301.5", "--json")
    assert MEASURE_KEYS <= set(d)
    assert d["distance_mm"] == pytest.approx(10.6, rel=0.01)
    assert d["calibration_source"] == "us_region" and d["region_index"] == 0
    assert d["warnings"] == [w for w in d["warnings"] if "ends past the 800×600 image at x 800" in w] != []


def test_measure_across_regions_is_px_only(capsys):
    d = run_json(capsys, "measure", str(ALOKA), "--p1", "300,100", "--p2", "400,100", "--json")
    assert d["distance_mm"] is None and d["distance_px"] == 100 and d["region_index"] is None
    assert any("different ultrasound regions" in w for w in d["warnings"])


def test_measure_uncalibrated_then_manual(capsys):
    d = run_json(capsys, "measure", str(J2K), "--p1", "10,10", "--p2", "40,50", "--json")
    assert d["distance_mm"] is None and d["distance_px"] == 50 and d["calibration_source"] == "none"
    d = run_json(capsys, "measure", str(J2K), "--p1", "10,10", "--p2", "40,50", "--mm-per-px", "0.1", "--json")
    assert d["distance_mm"] == pytest.approx(5) and d["calibration_source"] == "manual"
    d = run_json(capsys, "measure", str(RLE), "--p1", "459.5,290.5", "--p2", "498.5,301.5", "--mm-per-px", "1",
                 "--json")
    assert d["calibration_source"] == "us_region" and d["distance_mm"] == pytest.approx(10.6, rel=0.01)
    assert any("--mm-per-px ignored" in w for w in d["warnings"])


def test_measure_errors_exit_1_one_line():
    r = cli("measure", J2K, "--p1", "10,10", "--p2", "700,10")
    assert r.returncode == 1 and r.stderr.startswith("msus: error:") and "outside" in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    r = cli("measure", RLE, "--frame", "2", "--p1", "1,1", "--p2", "2,2")
    assert r.returncode == 1 and "out of range" in r.stderr
    r = cli("measure", RLE, "--p1", "1;1", "--p2", "2,2")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_info_errors_exit_1(tmp_path):
    for data, needle in ((b"", "empty"), (b"PK\x03\x04" + b"\0" * 200, "zip"), (b"x" * 500, "not a DICOM")):
        p = tmp_path / "f"
        p.write_bytes(data)
        r = cli("info", p)
        assert r.returncode == 1 and r.stderr.startswith("msus: error:") and needle in r.stderr
        assert "Traceback" not in r.stderr
