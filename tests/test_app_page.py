"""The page itself under streamlit.testing.v1.AppTest (no browser): loading, events, errors."""

from __future__ import annotations

import math
import shutil

import pytest
from streamlit.testing.v1 import AppTest

import msus
from conftest import DATA, ROOT, SAMPLES

CX50 = "pydicomdata_OBXXXX1A_rle_2frame_cx50.dcm"
DUAL = "pydicomdata_gdcm-US-ALOKA-16_dualregion.dcm"
NOCAL = "pydicomdata_US1_J2KR_logiq700_mskpreset.dcm"


@pytest.fixture
def folders(tmp_path, monkeypatch):
    samples = tmp_path / "samples"
    data = tmp_path / "data"
    samples.mkdir()
    data.mkdir()
    shutil.copy(DATA / CX50, samples / ("a_" + CX50))  # first sample opens by default
    shutil.copy(DATA / DUAL, samples / ("b_" + DUAL))
    shutil.copy(DATA / DUAL, data / DUAL)
    shutil.copy(DATA / NOCAL, data / NOCAL)
    (data / "broken.dcm").write_bytes(b"DICM" * 50)
    monkeypatch.setenv("MSUS_SAMPLES_DIR", str(samples))
    monkeypatch.setenv("MSUS_DATA_DIR", str(data))
    monkeypatch.setenv("MSUS_LOOPS_DIR", str(data))
    monkeypatch.setenv("MSUS_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    return samples, data


def _app() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)


def _review(at):
    return at.session_state["msus_reviews"][at.session_state["msus_current"]]


def _study(at) -> str:
    return next(m.value for m in at.markdown if "class=\"msus-study\"" in m.value)


def _events(at, *events):
    """What the browser player would send: apply through the same callback path, then rerun."""
    rv = _review(at)
    rv.handle_log({"sid": "test", "events": [dict(e, seq=rv.event_seq + k + 1) for k, e in enumerate(events)]})
    return at.run()


def test_first_sample_opens_with_header_and_badge(folders):
    at = _app().run()
    assert not at.exception and not at.error
    assert at.sidebar.selectbox(key="msus_sample").value.startswith("a_")
    bar = _study(at)
    assert "2 frames" in bar and "800×600 px" in bar and "30.0 fps (no timing in file: assumed)" in bar  # this scanner file has no timing
    assert "msus-cal-ok" in bar and "0.2623" in bar and "source us_region" in bar
    # patient fields hidden until asked for
    assert not at.table
    at.toggle(key="msus_show_phi").set_value(True).run()
    assert not at.exception and at.table


def test_caliper_events_become_mm_rows_and_retraction(folders):
    at = _app().run()
    at = _events(at, {"type": "mark", "which": "rest", "frame": 0}, {"type": "mark", "which": "contraction", "frame": 1})
    at = _events(
        at,
        {"type": "caliper_add", "frame": 0, "p1": [459.5, 290.5], "p2": [498.5, 301.5]},
        {"type": "caliper_add", "frame": 1, "p1": [459.5, 290.5], "p2": [510.5, 301.5]},
    )
    assert not at.exception and not at.error
    rows = at.get("arrow_data_frame")[0].value if at.get("arrow_data_frame") else None
    rv = _review(at)
    mmpp = 0.262288  # region ΔX = ΔY of this file, in mm/px
    expected = [math.hypot(39, 11) * mmpp, math.hypot(51, 11) * mmpp]
    assert [m.length_mm for m in rv.measurements] == pytest.approx(expected, rel=1e-4)
    metric = {m.label: m.value for m in at.metric}["Retraction Δgap"]
    pg = rv.paired()
    assert metric == f"{expected[1] - expected[0]:+.2f} mm" == f"{pg.retraction_mm:+.2f} mm"
    if rows is not None:
        assert list(rows["label"]) == ["gap at rest", "gap at contraction"]


def test_caliper_across_regions_shows_reason(folders):
    at = _app().run()
    at.sidebar.selectbox(key="msus_sample").set_value("b_" + DUAL).run()
    at = _events(at, {"type": "caliper_add", "frame": 0, "p1": [300, 200], "p2": [400, 200]})
    assert len(at.error) == 1 and "different ultrasound regions" in at.error[0].value
    assert _review(at).measurements == []


def test_server_path_outside_data_folder_and_broken_file_are_clear_errors(folders):
    at = _app().run()
    at.sidebar.radio(key="msus_open_kind").set_value("Server path").run()
    at.sidebar.text_input(key="msus_path_").set_value("../samples/a_" + CX50).run()
    assert "outside the data folder" in at.error[0].value
    at.sidebar.text_input(key="msus_path_").set_value("broken.dcm").run()
    assert len(at.error) == 1 and not at.exception
    at.sidebar.text_input(key="msus_path_").set_value(DUAL).run()
    assert not at.error and not at.exception
    assert "1 frame<" in _study(at)


def test_manual_calibration_on_an_uncalibrated_file(folders):
    at = _app().run()
    at.sidebar.radio(key="msus_open_kind").set_value("Server path").run()
    at.sidebar.text_input(key="msus_path_").set_value(NOCAL).run()
    assert "UNCALIBRATED" in _study(at)
    at = _events(at, {"type": "caliper_add", "frame": 0, "p1": [100, 100], "p2": [200, 100]})
    assert "px (uncalibrated)" in _review(at).measurements[0].distance.label
    at = _events(at, {"type": "calib_points", "frame": 0, "p1": [50, 40], "p2": [50, 240]})
    at.number_input(key="msus_cal_mm").set_value(20.0)
    at.button(key="msus_cal_apply").click().run()
    assert not at.exception and not at.error
    (m,) = _review(at).measurements
    assert m.length_mm == pytest.approx(10.0) and m.calibration_source == "manual"
    assert "source manual" in _study(at)


def test_manual_calibration_by_a_typed_scale(folders):
    # a loop with no depth scale to click on: the known mm/px typed, as the CLI's --mm-per-px
    at = _app().run()
    at.sidebar.radio(key="msus_open_kind").set_value("Server path").run()
    at.sidebar.text_input(key="msus_path_").set_value(NOCAL).run()
    at = _events(at, {"type": "caliper_add", "frame": 0, "p1": [100, 100], "p2": [200, 100]})
    at.number_input(key="msus_cal_mmpp").set_value(0.075).run()
    at.button(key="msus_cal_apply_mmpp").click().run()
    assert not at.exception and not at.error
    (m,) = _review(at).measurements
    assert m.length_mm == pytest.approx(7.5) and m.calibration_source == "manual"
    assert "source manual" in _study(at)


def test_teaching_mode_switch_and_back(folders):
    from msus.ui import navigation

    at = _app().run()

    at.switch_page(navigation.TEACHING).run()  # the navigation's Teaching page
    assert not at.exception
    assert all("traceback" not in e.value.lower() for e in at.error)
    assert [t.value for t in at.title] == ["Teaching mode"]
    at.switch_page(navigation.REVIEW).run()
    assert not at.exception and "2 frames" in _study(at)


def test_patient_fields_read_as_names_and_dates():
    from msus.meta import patient_fields

    cine = msus.load(SAMPLES / "pydicomdata_OBXXXX1A_rle_2frame_cx50.dcm")
    fields = dict(patient_fields(cine.meta))
    assert fields["name"] == "OB" and fields["study date"] == "2011-05-25" and fields["study time"] == "14:28:25"
    assert cine.meta["PatientName"] == "OB^^^^"  # a name, not a list of characters
    ph = dict(patient_fields(msus.load(SAMPLES / "phantom_full_tear.dcm").meta))
    assert ph["name"] == "RECTUS PHANTOM" and ph["sex"] == "O"


def test_rest_and_contraction_on_one_frame_is_warned(folders):
    at = _app().run()
    at = _events(at, {"type": "mark", "which": "rest", "frame": 1}, {"type": "mark", "which": "contraction", "frame": 1})
    assert any("same frame (2)" in w.value for w in at.warning)
    at = _events(at, {"type": "mark", "which": "rest", "frame": 0})
    assert not any("same frame" in w.value for w in at.warning)
