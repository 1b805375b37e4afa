"""The Streamlit PACS panel (search → table → open) via AppTest."""

from __future__ import annotations

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
