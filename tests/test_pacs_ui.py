"""The Streamlit PACS panel (search → table → open) and the Send-to-PACS button, via AppTest."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest

pytestmark = pytest.mark.orthanc

DATA = Path(__file__).parent / "data"
YBR = DATA / "pydicom_examples_ybr_color_30f.dcm"


def _search_app():
    import streamlit as st

    from msus.ui import pacs_panel

    src = pacs_panel.search_panel(container=st)
    if src is not None:
        cine = pacs_panel.open_source(src)
        st.session_state["opened"] = (src.kind, src.name, len(cine), cine.frame(0).shape)
    pacs_panel.outbox_status(container=st)


def _send_app():
    import streamlit as st

    from msus.ui import pacs_panel

    res = pacs_panel.send_to_pacs_button(lambda: st.session_state["payload"], kind="sr", key="send_sr")
    if res is not None:
        st.session_state["result"] = res.status


@pytest.fixture()
def pacs_env(monkeypatch, orthanc, tmp_path):
    monkeypatch.setenv("MSUS_PACS_URL", orthanc.dicomweb_url)
    monkeypatch.setenv("MSUS_PACS_TIMEOUT_S", "5")
    monkeypatch.setenv("MSUS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MSUS_PACS_CONFIG", raising=False)
    orthanc.upload(YBR)
    return orthanc


def test_search_table_open(pacs_env):
    from streamlit.testing.v1 import AppTest

    ds = pydicom.dcmread(YBR, stop_before_pixels=True)
    at = AppTest.from_function(_search_app, default_timeout=60)
    at.run()
    assert not at.exception
    at.text_input(key="msus_pacs_pid").input(str(ds.PatientID))
    at.button[0].click()  # the form's Search button
    at.run()
    assert not at.exception and not at.error
    assert [r["study_uid"] for r in at.session_state["msus_pacs_results"]] == [str(ds.StudyInstanceUID)]
    # Pick the study in the table (what a click on the row does) and open its loop.
    at.session_state["msus_pacs_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception, at.exception
    open_btn = next(b for b in at.button if b.key == "msus_pacs_open")
    open_btn.click()
    at.run()
    assert not at.exception and not at.error
    kind, name, n, shape = at.session_state["opened"]
    assert kind == "pacs" and n == 30 and shape == (240, 320, 3)
    assert str(ds.PatientName) not in name  # the Source name never carries patient fields


def test_send_button_sends_once_and_queues_when_down(pacs_env, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from orthanc import free_port, make_sr

    sr = make_sr(pydicom.dcmread(YBR, stop_before_pixels=True), "from the app")
    buf = io.BytesIO()
    sr.save_as(buf, enforce_file_format=True)
    at = AppTest.from_function(_send_app, default_timeout=60)
    at.session_state["payload"] = buf.getvalue()
    at.run()
    at.button(key="send_sr").click()
    at.run()
    assert at.session_state["result"] == "sent" and at.success
    at.button(key="send_sr").click()
    at.run()
    assert at.session_state["result"] == "already_in_archive"

    monkeypatch.setenv("MSUS_PACS_URL", f"http://127.0.0.1:{free_port()}/dicom-web")
    sr2 = make_sr(pydicom.dcmread(YBR, stop_before_pixels=True), "archive down")
    buf2 = io.BytesIO()
    sr2.save_as(buf2, enforce_file_format=True)
    at2 = AppTest.from_function(_send_app, default_timeout=60)
    at2.session_state["payload"] = buf2.getvalue()
    at2.run()
    at2.button(key="send_sr").click()
    at2.run()
    assert at2.session_state["result"] == "queued"
    assert at2.warning and "queued" in at2.warning[0].value


def _export_app():
    from types import SimpleNamespace

    import streamlit as st

    import msus
    from msus.ui import export_panel

    path = st.session_state.get("path")
    result = SimpleNamespace(  # the analysis shown on the page (as in test_store_ui)
        rest_frame=1, contraction_frame=4, gap_rest_mm=5.0, gap_contraction_mm=8.8, retraction_mm=3.8,
        gap_rest_px=25.0, gap_contraction_px=44.0, defect_thickness_fraction=1.0, calibration_source="manual",
        classification="suspected_full_thickness", reasons=("defect spans 100 % of the muscle thickness",),
        finding=None, defect_rest=None, defect_contraction=None, defect_found=True,
    )
    if path:  # a file
        export_panel.render(msus.load(path), path, analysis=result)
    else:  # a loop opened from the archive (its header is the SR's source)
        from msus.pacs.client import Archive
        from msus.ui.sources import Source

        cine = Archive().open_cine(*st.session_state["uids"], prefetch=False)
        export_panel.render(cine, Source("pacs", "PACS loop", "pacs:test"), analysis=result)


@pytest.mark.parametrize("opened", ["file", "archive"])
def test_export_panel_sends_the_prepared_sr(pacs_env, opened):
    """README: "Send to PACS in the Export panel" — the prepared SR goes through the outbox to the archive."""
    from streamlit.testing.v1 import AppTest

    from msus.pacs.client import Archive
    from msus.pacs.config import load_config

    src = pydicom.dcmread(YBR, stop_before_pixels=True)
    at = AppTest.from_function(_export_app, default_timeout=90)
    if opened == "file":
        at.session_state["path"] = str(YBR)
    else:
        at.session_state["uids"] = (str(src.StudyInstanceUID), str(src.SeriesInstanceUID), str(src.SOPInstanceUID))
    at.run()
    assert not at.exception
    at.radio(key="msus_export_format").set_value("sr")
    at.run()
    at.button(key="msus_export_go").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    blob = at.session_state["msus_app"].export_ready[2]
    sr = pydicom.dcmread(io.BytesIO(blob), stop_before_pixels=True)
    sop = str(sr.SOPInstanceUID)
    assert sr.StudyInstanceUID == src.StudyInstanceUID  # the report joins the loop's study
    at.button(key="msus_export_pacs_sr").click()
    at.run()
    assert not at.exception and not at.error and at.success, [e.value for e in at.error]
    with Archive(load_config()) as a:
        assert a.has_instance(sop)  # the prepared SR is in the archive
