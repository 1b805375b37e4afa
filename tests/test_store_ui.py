"""The store's Streamlit panels, driven with Streamlit's AppTest (no browser)."""

from __future__ import annotations

import pytest

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest  # noqa: E402


def _script():
    import numpy as np
    import streamlit as st

    from msus.calibration import Calibration
    from msus.cine import Cine
    from msus.ui import export_panel, store_panels
    from msus.ui.review import Review

    rng = np.random.default_rng(42)
    cine = Cine.from_frames(rng.integers(0, 255, (6, 40, 60), dtype=np.uint8), fps=10, calibration=Calibration.manual(0.2))
    reviewer = store_panels.reviewer_chooser()
    review = st.session_state.setdefault("test_review", Review.for_cine(cine, "test-loop"))
    store_panels.connect(cine, review, reviewer)
    from msus.errors import MsusError

    try:  # as the player's events are applied (Review.handle_log): a refusal is a one-line message
        if st.button("add caliper", key="t_add"):
            review.add_caliper(1, (5, 5), (25, 5), label="gap at rest")
        if st.button("move caliper", key="t_move"):
            review.move_caliper(review.measurements[0].id, (5, 5), (30, 5))
    except MsusError as e:
        review.messages.append(("error", str(e)))
    st.write(store_panels.save_status(review))
    for level, text in review.take_messages():
        {"error": st.error, "success": st.success, "info": st.info}.get(level, st.warning)(text)
    result = None
    if st.checkbox("analysed", key="t_an"):
        from types import SimpleNamespace

        result = SimpleNamespace(
            rest_frame=1, contraction_frame=4, gap_rest_mm=5.0, gap_contraction_mm=8.8, retraction_mm=3.8,
            gap_rest_px=25.0, gap_contraction_px=44.0, defect_thickness_fraction=1.0, calibration_source="manual",
            classification="suspected_full_thickness", reasons=("defect spans 100 % of the muscle thickness",),
            finding=None, defect_rest=None, defect_contraction=None, defect_found=True,
        )
    store_panels.finding_panel(cine, review, reviewer, result)
    store_panels.agreement_panel(cine)
    store_panels.study_list()
    export_panel.render(cine, None)


def test_autosave_restore_study_list_and_agreement():
    from msus.calibration import Calibration
    from msus.measure import make_measurement
    from msus.store.identity import identify
    from msus.ui.store_panels import get_store

    at = AppTest.from_function(_script, default_timeout=30).run()
    assert not at.exception
    assert any("Choose a reviewer" in w.value for w in at.warning)
    at.text_input(key="msus_reviewer_typed").input("Dr Ada").run()
    at.button(key="t_add").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("1 of 1 calipers saved" in str(m.value) for m in at.markdown)
    at.button(key="t_move").click().run()
    store = get_store()
    import numpy as np

    from msus.cine import Cine

    rng = np.random.default_rng(42)
    cine = Cine.from_frames(rng.integers(0, 255, (6, 40, 60), dtype=np.uint8), fps=10, calibration=Calibration.manual(0.2))
    key = identify(cine).loop_key
    saved = store.measurements(key, reviewer="Dr Ada")
    assert len(saved) == 1 and saved[0].version == 2 and saved[0].measurement.length_mm == pytest.approx(5.0)
    # a second reviewer measures the same gap: agreement appears
    store.add_measurement(key, make_measurement(Calibration.manual(0.2), 1, (5, 5), (31, 5), label="gap at rest"), reviewer="Dr Bo")
    store.add_measurement(key, make_measurement(Calibration.manual(0.2), 4, (5, 5), (45, 5), label="gap at contraction"), reviewer="Dr Bo")
    store.add_measurement(key, make_measurement(Calibration.manual(0.2), 4, (5, 5), (44, 5), label="gap at contraction"), reviewer="Dr Ada")
    # a fresh session (the app was killed and restarted): Dr Ada's calipers come back
    at2 = AppTest.from_function(_script, default_timeout=30).run()
    at2.text_input(key="msus_reviewer_typed").input("Dr Ada").run()
    assert not at2.exception
    assert any("restored 2 saved caliper(s)" in w.value for w in at2.success)  # good news, not a warning
    assert not any("restored" in w.value for w in at2.warning)
    assert any("Rater agreement" in str(m.value) for m in at2.markdown)
    assert len(at2.dataframe) >= 3  # agreement table, Bland–Altman table, study list
    study = at2.dataframe[-1].value
    assert set(study["reviewers"].iloc[0].split(", ")) == {"Dr Ada", "Dr Bo"}
    # an analysis result is saved once as a draft automatic finding; the reviewer marks it final
    at2.checkbox(key="t_an").check().run()
    at2.run()
    fs = store.findings(key)
    # her own calipers with the gap roles replace the automatic values (one value: msus.record)
    assert len(fs) == 1 and (fs[0].kind, fs[0].status, fs[0].reviewer) == ("automatic-edited", "draft", "Dr Ada")
    assert (fs[0].gap_rest_mm, fs[0].gap_contraction_mm) == pytest.approx((5.0, 7.8))
    at2.button(key="msus_finalize").click().run()
    assert not at2.exception and store.findings(key)[0].status == "draft"  # not before the confirmation
    assert any("Sign this finding as Dr Ada" in w.value for w in at2.warning)
    at2.button(key="msus_finalize_confirm").click().run()
    assert not at2.exception
    assert (store.findings(key)[0].status, store.findings(key)[0].signed_by) == ("final", "Dr Ada")
    assert [e.action for e in store.audit(key) if e.entity == "finding"] == ["create", "finalize"]
    # the export panel prepares a JSON from the store
    at2.radio(key="msus_export_format").set_value("json").run()
    at2.button(key="msus_export_go").click().run()
    assert not at2.exception and not at2.error, [e.value for e in at2.error]


def test_the_app_saves_calipers_as_made_and_restores_them(tmp_path, monkeypatch):
    """app.py end to end: reviewer chosen, player caliper events autosaved, restored in a new session."""
    import shutil

    from conftest import DATA, ROOT

    samples = tmp_path / "samples"
    samples.mkdir()
    shutil.copy(DATA / "pydicomdata_OBXXXX1A_rle_2frame_cx50.dcm", samples / "a.dcm")
    monkeypatch.setenv("MSUS_SAMPLES_DIR", str(samples))
    monkeypatch.setenv("MSUS_DATABASE_URL", f"sqlite:///{tmp_path / 'team.sqlite3'}")
    monkeypatch.setenv("MSUS_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")

    def events(at, *evs):
        rv = at.session_state["msus_reviews"][at.session_state["msus_current"]]
        rv.handle_log({"sid": "t", "events": [dict(e, seq=rv.event_seq + k + 1) for k, e in enumerate(evs)]})
        return at.run()

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    at.text_input(key="msus_reviewer_typed").input("Dr Eve").run()
    at = events(at, {"type": "caliper_add", "frame": 0, "p1": [459.5, 290.5], "p2": [498.5, 301.5]})
    assert not at.exception and not [e.value for e in at.error]
    from msus.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'team.sqlite3'}")
    (row,) = store.study_list()
    saved = store.measurements(row.loop_key)
    assert len(saved) == 1 and saved[0].measurement.reviewer == "Dr Eve"
    assert saved[0].measurement.length_mm == pytest.approx(10.6, rel=0.01)  # the scanner's own caliper: 1.06 cm
    # a new browser session (the app restarted): the same reviewer gets the caliper back
    at2 = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at2.text_input(key="msus_reviewer_typed").input("Dr Eve").run()
    rv = at2.session_state["msus_reviews"][at2.session_state["msus_current"]]
    assert [m.id for m in rv.measurements] == [saved[0].id]
    store.close()


def test_a_signed_finding_is_locked_in_the_app_and_changes_by_amendment(tmp_path, monkeypatch):
    """Sign with confirmation; moving a caliper is refused with one line; Amend opens a version."""
    from msus.store.identity import identify
    from msus.ui.store_panels import get_store

    monkeypatch.setenv("MSUS_DATA_DIR", str(tmp_path))
    at = AppTest.from_function(_script, default_timeout=30).run()
    at.text_input(key="msus_reviewer_typed").input("Dr Cy").run()
    at.button(key="t_add").click().run()
    at.checkbox(key="t_an").check().run()
    store = get_store()
    key = next(r.loop_key for r in store.study_list())
    f = store.latest_finding(key)
    assert f.gap_rest_mm == pytest.approx(4.0) and f.reviewer == "Dr Cy"  # her caliper, not the analysis' 5.0
    at.button(key="msus_finalize").click().run()
    at.button(key="msus_finalize_confirm").click().run()
    assert store.latest_finding(key).status == "final"
    assert any("🔒 suspected full thickness — final (signed by Dr Cy" in str(m.value).replace("\\", "") for m in at.markdown)
    before = store.measurements(key)[0]
    at.button(key="t_move").click().run()
    assert not at.exception
    assert any("amend the finding" in e.value for e in at.error), [e.value for e in at.error]
    assert store.measurements(key)[0].version == before.version  # nothing moved, in the app or the store
    f = store.latest_finding(key)
    at.text_input(key=f"msus_amend_reason_{f.id}").input("rest caliper on the fibre end").run()
    at.button(key="msus_amend").click().run()
    v2 = store.latest_finding(key)
    assert (v2.status, v2.supersedes, v2.amendment_reason) == ("draft", f.id, "rest caliper on the fibre end")
    at.button(key="t_move").click().run()
    assert not at.error, [e.value for e in at.error]
    assert store.latest_finding(key).gap_rest_mm == pytest.approx(5.0)
    at.button(key="msus_finalize").click().run()
    at.button(key="msus_finalize_confirm").click().run()
    last = store.latest_finding(key)
    assert (last.status, last.amendment_no) == ("amended", 1)
    assert [e.action for e in store.audit(key) if e.entity == "finding"] == [
        "create", "finalize", "amend", "recompute", "finalize"]
    assert identify  # noqa: the loop key came from the study list
