"""The teaching page with Streamlit's AppTest: one learner through three sample cases."""

from __future__ import annotations

import re

import csv
import io
from pathlib import Path

import pytest

from tests.conftest import ROOT
from teaching_helpers import THREE, three_samples, truth

SCRIPT = str(ROOT / "tests" / "teaching_app_script.py")
@pytest.fixture(scope="session")
def teaching_samples(tmp_path_factory) -> Path:
    return three_samples(tmp_path_factory)


def expected_points(gap_err_static_mm: float, gap_err_con_mm: float, static_ok: bool, final_ok: bool) -> float:
    """The documented rule, written out again independently of msus.teaching."""

    def gap(e):
        return 15.0 if e <= 1.0 else 0.0 if e >= 3.0 else 15.0 * (1 - (e - 1.0) / 2.0)

    pts = (50.0 if final_ok else 0.0) + (20.0 if static_ok else 0.0) + (10.0 if final_ok and not static_ok else 0.0)
    return pts + gap(gap_err_static_mm) + gap(gap_err_con_mm)


def _answer(at, k: str, call: str, gap_mm: float | None):
    at.radio(key=k + "_call").set_value(call).run()
    if gap_mm is not None:
        at.checkbox(key=k + "_gap_on").check().run()
        at.number_input(key=k + "_gap").set_value(round(gap_mm, 1)).run()
    return at


def test_learner_walks_three_cases(teaching_samples, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("MSUS_SAMPLES_DIR", str(teaching_samples))
    full, partial, intact = (truth(teaching_samples, n) for n in THREE)
    at = AppTest.from_file(SCRIPT, default_timeout=60).run()
    assert not at.exception
    assert at.multiselect(key="teach_pick").value == [f"sample-{n}" for n in THREE]
    shown = list(at.multiselect(key="teach_pick").options)  # as the room sees them
    assert all(re.fullmatch(r"Case \d+ · .+", o) for o in shown), shown  # blinded: no "tear", no gap
    at.text_input(key="teach_learner").input("Learner A")
    at.button(key="teach_start").click().run()

    plan = [
        # (static call, static gap, final call, final gap)  -- what the learner answers
        ("no_defect", None, "suspected_full_thickness", full["gap_contraction_mm"] + 0.4),
        ("partial", partial["gap_rest_mm"] + 0.2, "partial", partial["gap_contraction_mm"] - 1.6),
        ("partial", 3.0, "no_defect", None),
    ]
    expected = [
        expected_points(full["gap_rest_mm"], 0.4, False, True),  # missed on static, caught on the loop
        expected_points(0.2, 1.6, True, True),
        expected_points(3.0, 0.0, False, True),  # a false gap on the static frame
    ]
    for n, (s_call, s_gap, f_call, f_gap) in enumerate(plan):
        md = " ".join(m.value for m in at.markdown)
        assert f"Case {n + 1} of 3" in md
        assert "Expert finding" not in md  # blind: nothing of the answer before the reveal
        _answer(at, f"teach_{n}_static", s_call, s_gap)
        at.button(key=f"teach_{n}_static_commit").click().run()
        assert not at.exception
        assert "Your static call" in " ".join(i.value for i in at.info)
        assert at.slider(key=f"teach_{n}_loop_ab").value[0] >= 1  # A–B clip of the contraction
        _answer(at, f"teach_{n}_loop", f_call, f_gap)
        at.button(key=f"teach_{n}_loop_commit").click().run()
        assert not at.exception
        banner = (at.success or at.error)[0].value
        assert "Expert finding" in banner
        metric = {m.label: m.value for m in at.metric}
        assert metric["Case score"] == f"{expected[n]:g} / 100"
        table = at.table[0].value
        assert "on the static frame" in " ".join(map(str, table.iloc[:, 0]))
        at.button(key=f"teach_{n}_next").click().run()
        assert not at.exception

    metric = {m.label: m.value for m in at.metric}
    assert metric["Score"] == f"{sum(expected):g} / 300"
    assert metric["Final calls right"] == "3 / 3"
    assert metric["Caught on the loop"] == "2"
    session = at.session_state["teach_session"]
    rows = list(csv.DictReader(io.StringIO(session.results_csv())))
    assert [r["case_id"] for r in rows] == [f"sample-{n}" for n in THREE] + ["TOTAL"]
    assert float(rows[-1]["points"]) == pytest.approx(sum(expected))
    assert rows[0]["learner"] == "Learner A"


def test_presentation_layout_and_errors(teaching_samples, monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("MSUS_SAMPLES_DIR", str(tmp_path))  # no samples: a clear message, no crash
    at = AppTest.from_file(SCRIPT, default_timeout=60).run()
    assert not at.exception
    assert "No teaching cases yet" in at.info[0].value
    at.toggle(key="teach_presentation").set_value(True).run()
    assert any("font-size" in h.proto.body for h in at.get("html"))

    monkeypatch.setenv("MSUS_SAMPLES_DIR", str(teaching_samples))
    at = AppTest.from_file(SCRIPT, default_timeout=60).run()
    at.multiselect(key="teach_pick").set_value([])
    at.button(key="teach_start").click().run()
    assert "at least one case" in at.error[0].value


def test_teacher_adds_a_saved_finding_as_a_case(teaching_samples, monkeypatch, tmp_path):
    """Store a finding on a loop in the data folder, add it from the page: de-identified, offered."""
    import shutil

    import msus
    from msus.store import open_store
    from streamlit.testing.v1 import AppTest

    pytest.importorskip("msus.export.deid")
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(teaching_samples / "phantom_full_tear.dcm", data / "thigh.dcm")
    monkeypatch.setenv("MSUS_DATA_DIR", str(data))
    monkeypatch.setenv("MSUS_LOOPS_DIR", str(data))
    monkeypatch.setenv("MSUS_SAMPLES_DIR", str(teaching_samples))
    monkeypatch.setenv("MSUS_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    store = open_store()
    cine = msus.load(data / "thigh.dcm")
    store.save_finding(store.register_loop(cine), {"classification": "suspected_full_thickness", "gap_rest_mm": 5.1,
                       "gap_contraction_mm": 9.8, "rest_frame": 4, "contraction_frame": 20,
                       "reasons": ["defect spans 100 % of the muscle thickness"]}, reviewer="Dr A", status="final")
    cine.close()
    store.close()

    at = AppTest.from_file(SCRIPT, default_timeout=60).run()
    assert at.button(key="teach_add").disabled  # nothing chosen yet
    at.selectbox(key="teach_add_loop").set_value("thigh.dcm").run()
    at.text_input(key="teach_add_title").input("Missed on the static exam").run()
    at.text_input(key="teach_add_region").input("rectus femoris, longitudinal").run()
    at.text_area(key="teach_add_point").input("Watch the ends separate on contraction.").run()
    at.button(key="teach_add").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "de-identified" in at.success[0].value
    at.run()
    options = at.multiselect(key="teach_pick").options
    assert not any("Missed on the static exam" in o for o in options)  # neutral titles for the room
    at.toggle(key="teach_show_titles").set_value(True).run()
    options = at.multiselect(key="teach_pick").options
    assert any("Missed on the static exam" in o for o in options)
    (case,) = __import__("msus.teaching", fromlist=["CaseLibrary"]).CaseLibrary().cases()
    assert case.answer.gap_contraction_mm == 9.8 and case.static_frame_index == 4
    assert Path(case.source).is_relative_to(data / "teaching")


def test_without_the_player_stills_and_side_by_side(teaching_samples, monkeypatch):
    """Without the browser player: the static frame as an image, the loop as the prepared clip,
    rest and widest frame side by side with the difference view."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("MSUS_SAMPLES_DIR", str(teaching_samples))
    monkeypatch.setenv("MSUS_TEACHING_PLAYER", "0")
    at = AppTest.from_file(SCRIPT, default_timeout=60).run()
    at.multiselect(key="teach_pick").set_value(["sample-phantom_full_tear"])
    at.button(key="teach_start").click().run()
    assert len(at.get("image")) == 1  # the static frame, nothing else
    at.button(key="teach_0_static_commit").click().run()
    assert len(at.get("image")) == 1  # the prepared clip (an animated image)
    at.toggle(key="teach_0_loop_sbs").set_value(True).run()
    assert len(at.get("image")) == 4 and not at.exception  # clip + rest | contraction | difference
    at.select_slider(key="teach_0_loop_speed").set_value(0.1).run()
    at.toggle(key="teach_0_loop_pp").set_value(False).run()
    assert not at.exception


def test_a_broken_case_loop_is_a_clear_error(teaching_samples, monkeypatch, tmp_path):
    import shutil

    from streamlit.testing.v1 import AppTest

    shutil.copy(teaching_samples / "phantom_intact.truth.json", tmp_path / "phantom_intact.truth.json")
    (tmp_path / "phantom_intact.dcm").write_bytes(b"DICM" * 40)  # damaged loop
    shutil.copy(teaching_samples / "phantom_partial_tear.truth.json", tmp_path / "gone.truth.json")  # no loop beside
    monkeypatch.setenv("MSUS_SAMPLES_DIR", str(tmp_path))
    at = AppTest.from_file(SCRIPT, default_timeout=60).run()
    assert "no loop file" in at.warning[0].value  # skipped, with its reason
    assert at.multiselect(key="teach_pick").value == ["sample-phantom_intact"]
    at.button(key="teach_start").click().run()
    assert not at.exception
    assert at.error and "\n" not in at.error[0].value
    at.button(key="teach_abandon").click().run()
    assert not at.exception and at.button(key="teach_start")  # back at the picker
