"""Clicks that survive an interrupted run, unlabelled calipers, the study list's Open (AppTest)."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest  # noqa: E402


def _click_script():
    import streamlit as st

    from msus.ui import clicks

    done = st.session_state.setdefault("t_done", [])
    if clicks.button("Go", key="t_go", scope="loop-1"):
        with clicks.handled("t_go", "loop-1"):
            if st.session_state.pop("t_interrupt", False):
                st.rerun()  # what a player "frame settled" rerun does to the click's run
            done.append(1)
    st.write(f"done {len(done)}")


def test_a_click_interrupted_by_a_rerun_still_runs_once():
    at = AppTest.from_function(_click_script, default_timeout=30).run()
    at.session_state["t_interrupt"] = True
    at.button(key="t_go").click().run()
    assert not at.exception
    assert at.session_state["t_done"] == [1]  # interrupted, then finished by the next run
    assert "t_go|loop-1__pending" not in at.session_state  # forgotten once done
    at.run()  # and not again on later runs
    assert at.session_state["t_done"] == [1]


def _table_script():
    import numpy as np
    import streamlit as st

    from msus.calibration import Calibration
    from msus.cine import Cine
    from msus.ui import panels
    from msus.ui.review import Review

    cine = Cine.from_frames(np.zeros((2, 40, 60), np.uint8), fps=10, calibration=Calibration.manual(0.2))
    review = st.session_state.setdefault("t_review", Review.for_cine(cine, "t-loop"))
    if not review.measurements:
        review.add_caliper(0, (5, 5), (25, 5), label="")
    panels.measurements_table(review)


def test_an_unlabelled_caliper_shows_a_dash_not_none():
    at = AppTest.from_function(_table_script, default_timeout=30).run()
    assert not at.exception
    (editor,) = at.dataframe  # the data editor
    df = editor.value
    assert list(df["label"]) == ["—"]
    assert "None" not in df.astype(str).to_numpy().ravel().tolist()


def test_the_study_list_opens_a_listed_loop(tmp_path, monkeypatch):
    from conftest import DATA, ROOT

    samples = tmp_path / "samples"
    samples.mkdir()
    shutil.copy(DATA / "pydicomdata_OBXXXX1A_rle_2frame_cx50.dcm", samples / "a.dcm")
    shutil.copy(DATA / "pydicomdata_US1_J2KR_logiq700_mskpreset.dcm", samples / "b.dcm")
    monkeypatch.setenv("MSUS_SAMPLES_DIR", str(samples))
    monkeypatch.setenv("MSUS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MSUS_DATABASE_URL", f"sqlite:///{tmp_path / 'team.sqlite3'}")
    monkeypatch.setenv("MSUS_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.text_input(key="msus_reviewer_typed").input("Dr Eve").run()  # registers a.dcm
    at.selectbox(key="msus_sample").select("b.dcm").run()  # registers b.dcm
    assert not at.exception and not [e.value for e in at.error]
    from msus.ui import navigation

    at.switch_page(navigation.WORKLIST).run()  # the worklist is its own page
    assert not at.exception and not [e.value for e in at.error]
    pick = at.selectbox(key="msus_study_pick")
    names = list(pick.options)  # as shown: "1. a.dcm"
    assert sorted(n.split(". ", 1)[1] for n in names) == ["a.dcm", "b.dcm"]
    row_a = next(i for i, n in enumerate(names) if n.endswith("a.dcm"))
    pick.set_value(row_a).run()
    at.button(key="msus_study_open").click().run()  # opens it on the Review page
    assert not at.exception and not [e.value for e in at.error]
    assert at.session_state["msus_sample"] == "a.dcm"
    assert at.session_state["msus_source"].name == "a.dcm"  # the loop on screen is now a.dcm
    # a listed loop whose file is gone: one line, nothing else changes
    (samples / "b.dcm").unlink()
    at.switch_page(navigation.WORKLIST).run()
    row_b = next(i for i, n in enumerate(names) if n.endswith("b.dcm"))
    at.selectbox(key="msus_study_pick").set_value(row_b).run()
    at.button(key="msus_study_open").click().run()
    assert not at.exception
    assert any("b.dcm is not in the samples or the data folder" in i.value for i in at.info)
    assert at.session_state["msus_source"].name == "a.dcm"
