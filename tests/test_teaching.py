"""Teaching mode core: cases, the blind-reveal state machine, scoring, CSV."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from msus import teaching as T
from msus.calibration import Calibration
from msus.errors import ExportError, MsusError
from msus.measure import make_measurement
from teaching_helpers import three_samples, truth


def _truth(folder: Path, name: str, tear: str, rest: int = 2, con: int = 6, n: int = 10, gap0=6.0, gap1=11.0):
    cls_ = {"full": "suspected_full_thickness", "partial": "partial", "none": "no_defect"}[tear]
    if tear == "none":
        gaps = [None] * n
        ends = [[[None, None], [None, None]]] * n
    else:
        g1 = gap1 if tear == "full" else gap0
        gaps = [gap0 + (g1 - gap0) * max(0.0, 1 - abs(i - con) / (con - rest)) for i in range(n)]
        ends = [[[100.0 - g / 0.2, 50.0], [100.0 + g / 0.2, 50.0]] for g in gaps]
    d = {
        "truth_version": 1, "classification": cls_, "tear": tear, "rest_frame": rest,
        "contraction_frame": con, "gap_mm": gaps, "stump_ends_px": ends, "mm_per_px": 0.1,
        "gap_rest_mm": gaps[rest], "gap_contraction_mm": gaps[con],
        "defect_thickness_fraction": {"full": 1.0, "partial": 0.5, "none": None}[tear],
    }
    (folder / f"{name}.truth.json").write_text(json.dumps(d))
    (folder / f"{name}.dcm").write_bytes(b"not read by the teaching core")
    return folder / f"{name}.truth.json"


@pytest.fixture()
def three_cases(tmp_path) -> list[T.Case]:
    _truth(tmp_path, "full_tear", "full")
    _truth(tmp_path, "partial_tear", "partial", gap0=4.0)
    _truth(tmp_path, "intact", "none")
    return T.sample_cases(tmp_path)


def test_sample_cases_from_truth(three_cases):
    by = {c.id: c for c in three_cases}
    assert sorted(by) == ["sample-full_tear", "sample-intact", "sample-partial_tear"]
    full = by["sample-full_tear"]
    assert full.answer.classification == "suspected_full_thickness"
    assert full.static_frame_index == 2 and full.answer.contraction_frame == 6
    assert full.answer.gap_rest_mm == pytest.approx(6.0)
    assert full.answer.gap_contraction_mm == pytest.approx(11.0)
    assert full.answer.retraction_mm == pytest.approx(5.0)
    assert full.ab_range == (2, 6)
    assert any("widens 5.0 mm" in r for r in full.answer.reasons)
    assert any("100 %" in r for r in full.answer.reasons)
    # expert calipers from the stump ends, 0.2 px per mm apart in this fake truth
    assert full.answer.contraction_caliper.x2 - full.answer.contraction_caliper.x1 == pytest.approx(110.0)
    assert Path(full.source).name == "full_tear.dcm" and full.origin == "sample"
    intact = by["sample-intact"]
    assert intact.answer.gap_rest_mm is None and intact.answer.rest_caliper is None
    assert intact.teaching_point


def test_truth_without_loop_is_refused(tmp_path):
    p = _truth(tmp_path, "lonely", "full")
    (tmp_path / "lonely.dcm").unlink()
    with pytest.raises(T.TeachingError, match="no loop file"):
        T.case_from_truth(p)


def test_case_round_trip(three_cases, tmp_path):
    c = three_cases[0]
    d = c.to_dict(relative_to=tmp_path)
    assert d["source"] == Path(c.source).name
    back = T.Case.from_dict(json.loads(json.dumps(d)), base=tmp_path)
    assert back == c


def _walk(cases, calls):
    s = T.Session.start(cases, learner="Learner A")
    for static, final in calls:
        assert s.stage == T.STATIC and s.revealed is None
        s = s.commit_static(*static)
        assert s.stage == T.LOOP and s.revealed is None
        s = s.commit_loop(*final)
        assert s.stage == T.REVEAL and s.revealed is not None
        s = s.next_case()
    assert s.stage == T.DONE and s.case is None
    return s


def test_session_walk_and_score(three_cases):
    by = {c.id: c for c in three_cases}
    cases = [by["sample-full_tear"], by["sample-partial_tear"], by["sample-intact"]]
    s = _walk(cases, [
        # missed on the static frame, caught on the loop, gaps within tolerance
        (("no_defect", None), ("suspected_full_thickness", 10.4)),
        # right from the start, rest gap 4 mm measured as 5.5 (1.5 mm off: 3/4 of the gap points)
        (("partial", 5.5), ("partial", 4.0)),
        # intact muscle, a false caliper of 2 mm on the static frame
        (("partial", 2.0), ("no_defect", None)),
    ])
    a, b, c = s.scores
    # case 1: final 50 + caught 10 + static gap (6 mm vs no caliper = 6 mm off: 0) + contraction 15
    assert a.caught_on_loop and not a.static_correct and a.final_correct
    assert a.gap_static_error_mm == pytest.approx(6.0) and a.gap_contraction_error_mm == pytest.approx(0.6)
    assert a.points == pytest.approx(75.0) and a.max_points == 100
    # case 2: 50 + 20 + 11.25 (1.5 mm error) + 15 (contraction gap = rest gap for a partial tear)
    assert b.points == pytest.approx(96.25)
    # case 3: final correct 50, static wrong 0, caught 10, static gap 2 mm vs 0 mm -> 7.5, contraction 15
    assert c.caught_on_loop and c.points == pytest.approx(82.5)
    summ = s.summary()
    assert summ.n_cases == 3 and summ.points == pytest.approx(253.75) and summ.max_points == 300
    assert summ.n_final_correct == 3 and summ.n_static_correct == 1 and summ.n_caught_on_loop == 2
    assert summ.percent == pytest.approx(253.75 / 3)


def test_wrong_kind_and_static_catch_beats_loop_catch(three_cases):
    full = three_cases[0]
    s = T.Session.start([full]).commit_static("partial", 6.0).commit_loop("partial", 6.0)
    sc = s.revealed
    assert not sc.final_correct and dict(sc.breakdown)["tear seen, wrong kind"] == 25
    assert sc.gap_contraction_error_mm == pytest.approx(5.0) and sc.points == pytest.approx(25 + 15)
    static_catch = T.Session.start([full]).commit_static("suspected_full_thickness", 6.0).commit_loop("suspected_full_thickness", 11.0)
    loop_catch = T.Session.start([full]).commit_static("no_defect", 6.0).commit_loop("suspected_full_thickness", 11.0)
    assert static_catch.revealed.points == 100
    assert loop_catch.revealed.points == 90


def test_caliper_measurement_feeds_the_gap(three_cases):
    full = three_cases[0]
    cal = Calibration.manual(0.1)
    m_rest = make_measurement(cal, 2, (10, 20), (70, 20))  # 6.0 mm
    m_con = make_measurement(cal, 6, (10, 20), (120, 20))  # 11.0 mm
    s = T.Session.start([full]).commit_static("suspected_full_thickness", caliper=m_rest)
    assert s.static_answer.gap_mm == pytest.approx(6.0)
    assert s.static_answer.caliper.calibration_source == "manual"
    s = s.commit_loop("suspected_full_thickness", caliper=m_con)
    assert s.revealed.points == 100 and s.revealed.gap_contraction_error_mm == pytest.approx(0.0)


def test_stage_guards(three_cases):
    s = T.Session.start(three_cases)
    with pytest.raises(T.TeachingError, match="static step"):
        s.commit_loop("no_defect")
    with pytest.raises(T.TeachingError, match="static step"):
        s.next_case()
    with pytest.raises(T.TeachingError, match="unknown tear kind"):
        s.commit_static("torn")
    with pytest.raises(T.TeachingError, match="negative"):
        s.commit_static("partial", -1)
    with pytest.raises(T.TeachingError, match="at least one case"):
        T.Session.start([])
    with pytest.raises(T.TeachingError, match="twice"):
        T.Session.start([three_cases[0], three_cases[0]])
    assert isinstance(T.TeachingError("x"), MsusError)


def test_gap_not_scored_without_mm(three_cases, tmp_path):
    c = three_cases[0]
    ans = T.Answer("suspected_full_thickness", None, None, rest_frame=2, contraction_frame=6)
    c2 = T.Case("u", "uncalibrated", "", "", ans, c.source, 2)
    sc = T.Session.start([c2]).commit_static("no_defect", 3.0).commit_loop("suspected_full_thickness", 3.0).revealed
    assert sc.max_points == 70 and sc.points == 60 and sc.gap_static_error_mm is None


def test_results_csv(three_cases):
    s = _walk(three_cases, [(("no_defect", None), ("suspected_full_thickness", 11.0))] * 3)
    rows = list(csv.DictReader(io.StringIO(s.results_csv())))
    assert [r["case_id"] for r in rows] == [c.id for c in three_cases] + ["TOTAL"]
    assert rows[0]["learner"] == "Learner A" and rows[0]["static_frame"] == "3"
    assert rows[0]["expert_gap_contraction_mm"] == "11.00" and rows[0]["caught_on_loop"] == "yes"
    total = rows[-1]
    assert float(total["points"]) == pytest.approx(sum(sc.points for sc in s.scores))
    assert float(total["max_points"]) == 300


def test_library_add_finding_deidentifies(tmp_path):
    src = tmp_path / "study" / "loop.dcm"
    src.parent.mkdir()
    src.write_bytes(b"PATIENT NAME INSIDE")
    calls = []

    def fake_deid(source, out_dir):
        calls.append(Path(source))
        out = Path(out_dir) / "loop_deid.dcm"
        out.write_bytes(b"clean")
        return out

    lib = T.CaseLibrary(tmp_path / "lib")
    finding = {
        "classification": "suspected_full_thickness", "gap_rest_mm": 3.1, "gap_contraction_mm": 8.4,
        "reasons": json.dumps(["defect spans 100 % of the muscle thickness"]),
        "rest_frame": 4, "contraction_frame": 20, "calibration_source": "us_region",
    }
    cal = Calibration.manual(0.1)
    ms = [make_measurement(cal, 4, (0, 0), (31, 0), label="gap at rest")]
    case = lib.add_finding(finding, src, title="Rectus femoris, missed on static", region="rectus femoris",
                           teaching_point="watch the ends separate", measurements=ms, deidentify=fake_deid)
    assert calls == [src] and src.read_bytes() == b"PATIENT NAME INSIDE"  # source untouched
    assert case.static_frame_index == 4 and case.answer.rest_caliper.length_mm == pytest.approx(3.1)
    assert Path(case.source).read_bytes() == b"clean"
    assert lib.cases() == [case]
    assert lib.get(case.id) == case
    assert "loop.dcm" not in (Path(case.source).parent / T.CASE_FILE).read_text()
    assert T.all_cases(None, lib) == [case]
    lib.remove(case.id)
    assert lib.cases() == []


def test_library_refuses_without_deidentifier(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_deid(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "msus.export" and fromlist and "deid" in fromlist:
            raise ImportError("no deid")
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", no_deid)
    src = tmp_path / "loop.dcm"
    src.write_bytes(b"x")
    with pytest.raises(ExportError, match="de-identification"):
        T.deidentify_loop(src, tmp_path / "out")
    lib = T.CaseLibrary(tmp_path / "lib")
    with pytest.raises(ExportError):
        lib.add_finding({"classification": "partial"}, src, title="t", region="r", teaching_point="p")
    assert lib.cases() == []


def test_a_loop_that_cannot_be_deidentified_is_an_export_error(tmp_path):
    src = tmp_path / "loop.dcm"
    src.write_bytes(b"not dicom")  # the de-identifier is there, the file is no DICOM: refused, one line
    with pytest.raises(ExportError, match="de-identification failed"):
        T.deidentify_loop(src, tmp_path / "out")


# ---- with the project's samples (the same three files the page tests use) -----------------------
@pytest.fixture(scope="module")
def real_samples(tmp_path_factory) -> Path:
    return three_samples(tmp_path_factory)


def test_bundled_samples_are_ready_cases(real_samples):
    cases = T.sample_cases(real_samples)
    kinds = [c.answer.classification for c in cases[:3]]
    assert kinds == ["suspected_full_thickness", "partial", "no_defect"]  # the classic three first
    full = cases[0]
    raw = truth(real_samples, "phantom_full_tear")
    assert full.static_frame_index == raw["rest_frame"]
    assert full.answer.gap_contraction_mm == pytest.approx(raw["gap_contraction_mm"])
    assert full.answer.gap_at(raw["contraction_frame"] - 1) == pytest.approx(raw["gap_mm"][raw["contraction_frame"] - 1])
    # expert caliper between the truth's stump ends; its length is close to the defined gap
    cal = full.answer.rest_caliper
    assert cal.frame_index == raw["rest_frame"]
    px = ((cal.x2 - cal.x1) ** 2 + (cal.y2 - cal.y1) ** 2) ** 0.5 * raw["mm_per_px"]
    assert px == pytest.approx(raw["gap_rest_mm"], abs=0.5)


def test_case_handouts_gif_and_mp4(real_samples, tmp_path):
    import msus
    from PIL import Image

    case = T.sample_cases(real_samples)[0]
    cine = msus.load(case.source)
    data = T.case_export_data(case, cine)
    assert [m.label for m in data.measurements] == ["gap at rest", "gap at contraction"]
    assert data.measurements[1].length_mm == pytest.approx(case.answer.gap_contraction_mm, abs=0.5)
    assert data.finding["classification"] == "suspected_full_thickness"
    gif = T.write_case_video(case, cine, tmp_path / "c.gif", "gif")
    a, b = case.ab_range
    assert Image.open(gif).n_frames == b - a + 1
    mp4 = T.write_case_video(case, cine, tmp_path / "c.mp4", "mp4")
    assert msus.load(mp4).n_frames == b - a + 1
    sheet = T.case_sheet(case)
    assert sheet["source"] == Path(case.source).name and "/" not in sheet["source"]
    with pytest.raises(T.TeachingError):
        T.write_case_video(case, cine, tmp_path / "c.avi", "avi")


def test_case_from_a_saved_finding_in_the_store(real_samples, tmp_path):
    import shutil

    import msus
    from msus.store import open_store

    src = tmp_path / "study" / "loop.dcm"
    src.parent.mkdir()
    shutil.copy(real_samples / "phantom_full_tear.dcm", src)
    before = src.read_bytes()
    store = open_store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    cine = msus.load(src)
    ref = store.register_loop(cine)
    cal = cine.calibration_for(4)
    store.add_measurement(ref, make_measurement(cal, 4, (100, 120), (150, 120), label="gap at rest"), reviewer="Dr A")
    store.save_finding(ref, {"classification": "suspected_full_thickness", "gap_rest_mm": 6.0, "gap_contraction_mm": 10.5,
                             "rest_frame": 4, "contraction_frame": 20, "reasons": ["gap widens 4.5 mm on contraction"],
                             "calibration_source": "us_region"}, reviewer="Dr A", status="final")
    cine.close()
    lib = T.CaseLibrary(tmp_path / "lib")
    seen = []

    def deid(source, out_dir):  # stands in for msus.export.deid in this unit test
        seen.append(Path(source))
        out = Path(out_dir) / "loop.dcm"
        shutil.copy(source, out)
        return out

    case = T.add_case_from_store(lib, store, src, title="Missed on static", region="rectus femoris",
                                 teaching_point="watch the ends", deidentify=deid)
    assert seen == [src] and src.read_bytes() == before
    assert case.answer.gap_contraction_mm == 10.5 and case.answer.reasons == ("gap widens 4.5 mm on contraction",)
    assert case.answer.rest_caliper.length_mm == pytest.approx(50 * cal.mm_per_px_at(100, 120)[0])
    assert case.static_frame_index == 4 and lib.cases() == [case]
    other = tmp_path / "other.dcm"
    shutil.copy(real_samples / "phantom_intact.dcm", other)
    with pytest.raises(T.TeachingError, match="no finding"):
        T.add_case_from_store(lib, store, other, title="x", region="r", teaching_point="p", deidentify=deid)
    store.close()


def test_loop_caliper_on_another_frame_uses_the_gap_curve(three_cases):
    full = three_cases[0]  # curve: 6 mm at rest (frame 2) rising to 11 mm at frame 6
    on5 = T.Caliper(5, 0, 0, 97.5, 0, length_mm=9.75)
    sc = T.Session.start([full]).commit_static("no_defect").commit_loop("suspected_full_thickness", caliper=on5).revealed
    assert sc.contraction_frame_index == 5 and sc.expert_gap_contraction_mm == pytest.approx(9.75)
    assert sc.gap_contraction_error_mm == pytest.approx(0.0)


def test_library_case_is_really_deidentified(real_samples, tmp_path):
    """The default call point: msus.export.deid rewrites the header and UIDs; the source is untouched."""
    import shutil

    import pydicom

    pytest.importorskip("msus.export.deid")
    src = tmp_path / "loop.dcm"
    shutil.copy(real_samples / "phantom_full_tear.dcm", src)
    before = src.read_bytes()
    orig = pydicom.dcmread(src, stop_before_pixels=True)
    assert str(orig.PatientName)  # the phantom carries a (fake) patient name
    lib = T.CaseLibrary(tmp_path / "lib")
    case = lib.add_finding({"classification": "suspected_full_thickness", "gap_rest_mm": 5, "gap_contraction_mm": 10,
                            "rest_frame": 4, "contraction_frame": 20}, src, title="t", region="r", teaching_point="p")
    assert src.read_bytes() == before
    ds = pydicom.dcmread(case.source, stop_before_pixels=True)
    assert str(ds.PatientName) == "" and str(ds.PatientID) == "" and ds.PatientIdentityRemoved == "YES"
    assert ds.SOPInstanceUID != orig.SOPInstanceUID
    assert orig.PatientID not in Path(case.source).read_bytes().decode("latin-1")


def test_case_bundle_handout(real_samples, tmp_path):
    import zipfile

    import msus

    bundle = pytest.importorskip("msus.export.bundle")
    case = T.sample_cases(real_samples)[0]
    cine = msus.load(case.source)
    out = bundle.write_bundle(case.source, T.case_export_data(case, cine), tmp_path / "b.zip")
    names = zipfile.ZipFile(out).namelist()
    assert "loop.dcm" in names and "annotated.mp4" in names
    found = json.loads(zipfile.ZipFile(out).read("findings.json"))
    assert "suspected_full_thickness" in json.dumps(found)


def test_broken_sample_is_skipped_with_reason(tmp_path):
    _truth(tmp_path, "good", "full")
    _truth(tmp_path, "bad", "none")
    (tmp_path / "bad.dcm").unlink()
    problems: list[str] = []
    assert [c.id for c in T.sample_cases(tmp_path, problems)] == ["sample-good"]
    assert problems == ["sample bad.truth.json has no loop file beside it"]
    with pytest.raises(T.TeachingError):
        T.sample_cases(tmp_path)
