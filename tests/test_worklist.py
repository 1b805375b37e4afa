"""The worklist: filters (flag, status, reviewer, days in the reader's zone), local times, the page (AppTest)."""

from __future__ import annotations

import shutil
from datetime import date

from streamlit.testing.v1 import AppTest

from msus.store.values import StudyListRow
from msus.worklist import NO_FLAG, WorklistFilter, filter_rows, local_time, zone_name


def _row(key, status, cls, who, at):
    return StudyListRow(key, "s", "se", f"{key}.dcm", "dicom", 10, 1, tuple(who), status, cls, at)


ROWS = [
    _row("a", "draft", "suspected_full_thickness", ["Ana"], "2026-12-01T23:30:00.000+00:00"),
    _row("b", "final", "partial", ["Ana", "Bo"], "2026-12-02T08:00:00.000+00:00"),
    _row("c", "new", None, [], None),
]


def test_filters_keep_what_they_name():
    keys = lambda f: [r.loop_key for r in filter_rows(ROWS, f)]  # noqa: E731
    assert keys(WorklistFilter()) == ["a", "b", "c"]
    assert keys(WorklistFilter(flags=("suspected full thickness",))) == ["a"]
    assert keys(WorklistFilter(flags=(NO_FLAG,))) == ["c"]
    assert keys(WorklistFilter(statuses=("final", "new"))) == ["b", "c"]
    assert keys(WorklistFilter(reviewers=("Bo",))) == ["b"]
    # 23:30 UTC on Dec 1 is Dec 2 in Tokyo: the day is the reader's
    assert keys(WorklistFilter(since=date(2026, 12, 2), until=date(2026, 12, 2))) == ["b"]
    assert keys(WorklistFilter(since=date(2026, 12, 2), until=date(2026, 12, 2), tz="Asia/Tokyo")) == ["a", "b"]


def test_times_in_the_readers_zone():
    assert local_time("2026-12-01T23:30:00.000+00:00", "Asia/Tokyo") == "2026-12-02 08:30"
    assert local_time("2026-12-01T23:30:00.000+00:00", None) == "2026-12-01 23:30"
    assert local_time(None, "Asia/Tokyo") == ""
    assert zone_name("Asia/Tokyo") == "Asia/Tokyo" and zone_name("Nowhere/Land") == "UTC" and zone_name(None) == "UTC"


def test_worklist_page_filters_and_opens(tmp_path, monkeypatch):
    from conftest import DATA, ROOT
    from msus.ui import navigation

    samples = tmp_path / "samples"
    samples.mkdir()
    shutil.copy(DATA / "pydicomdata_OBXXXX1A_rle_2frame_cx50.dcm", samples / "a.dcm")
    monkeypatch.setenv("MSUS_SAMPLES_DIR", str(samples))
    monkeypatch.setenv("MSUS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MSUS_DATABASE_URL", f"sqlite:///{tmp_path / 'wl.sqlite3'}")
    monkeypatch.setenv("MSUS_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.text_input(key="msus_reviewer_typed").input("Dr Eve").run()  # registers a.dcm
    at.switch_page(navigation.WORKLIST).run()
    assert not at.exception and not at.error
    assert any("1 of 1 loop(s) · times in UTC" in c.value for c in at.caption)
    at.multiselect(key="msus_wl_status").set_value(["final"]).run()
    assert any("0 of 1 loop(s)" in c.value for c in at.caption)
    assert any("No loop matches these filters." in c.value for c in at.caption)
    at.multiselect(key="msus_wl_status").set_value([]).run()
    at.button(key="msus_study_open").click().run()  # to Review, the loop on screen
    assert not at.exception and not at.error
    assert at.session_state["msus_source"].name == "a.dcm"
    assert any('class="msus-study"' in m.value for m in at.markdown)  # the Review page's study bar


def test_worklist_shows_a_batch_result_as_automatic_batch_of_its_date(tmp_path, monkeypatch):
    """A loop `msus batch` analysed is listed like any draft finding: "automatic, batch of <date>"."""
    from batch_loops import write_loop
    from conftest import ROOT
    from msus.batch import REVIEWER, BatchItem, BatchSettings, process_loop
    from msus.ui import navigation

    samples = tmp_path / "samples"
    samples.mkdir()
    path = write_loop(samples, "wl_batch", "full", seed=51)
    url = f"sqlite:///{tmp_path / 'wl.sqlite3'}"
    settings = BatchSettings.local(store_url=url)
    row = process_loop(BatchItem("wl_batch.dcm", path=str(path)), settings)
    assert row["status"] == "analysed", row["error"]
    monkeypatch.setenv("MSUS_SAMPLES_DIR", str(samples))
    monkeypatch.setenv("MSUS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MSUS_DATABASE_URL", url)
    monkeypatch.setenv("MSUS_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page(navigation.WORKLIST).run()
    assert not at.exception and not at.error
    (listed,) = at.dataframe
    rows = listed.value.to_dict("records")
    assert [(r["loop"], r["status"], r["finding"], r["reviewers"]) for r in rows] == [
        ("wl_batch.dcm", "draft", f"automatic, batch of {settings.date}", REVIEWER)]
    assert rows[0]["flag"] == row["classification"].replace("_", " ")
    # opened in Review, the finding panel says the same
    at.text_input(key="msus_reviewer_typed").input("Dr Eve").run()
    at.switch_page(navigation.WORKLIST).run()
    at.button(key="msus_study_open").click().run()
    assert not at.exception and not at.error
    assert at.session_state["msus_source"].name == "wl_batch.dcm"
    assert any(f"draft, automatic, batch of {settings.date}, by {REVIEWER}" in m.value for m in at.markdown), \
        [m.value for m in at.markdown if "batch" in m.value]
