"""The app's Python side without a browser: review state, player events, sources, settings, frames."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

import msus
from msus.calibration import Calibration
from msus.cine import Cine
from msus.config import Settings, load_settings
from msus.errors import LoadError, MsusError, TooLarge
from msus.measure import LABEL_CONTRACTION, LABEL_REST
from msus.ui import frames, sources
from msus.ui.player import player_data
from msus.ui.review import Review

from conftest import DATA

DUAL = DATA / "pydicomdata_gdcm-US-ALOKA-16_dualregion.dcm"  # two side-by-side 2D regions, 0.38265 mm/px
CX50 = DATA / "pydicomdata_OBXXXX1A_rle_2frame_cx50.dcm"  # burned-in caliper "1.06 cm"
NOCAL = DATA / "pydicomdata_US1_J2KR_logiq700_mskpreset.dcm"  # no calibration at all


def _review(path) -> tuple[Cine, Review]:
    cine = msus.load(path)
    return cine, Review.for_cine(cine, f"test:{path.name}")


def _log(sid, *events):
    return {"sid": sid, "events": [dict(e, seq=k + 1) for k, e in enumerate(events)]}


# ---- calipers from player events --------------------------------------------------------------
def test_caliper_event_on_scanner_caliper_gives_its_mm():
    cine, rv = _review(CX50)
    # the scanner's own caliper crosses, read off the burned-in graphics: 1.06 cm
    n = rv.handle_log(_log("s1", {"type": "caliper_add", "frame": 0, "p1": [459.5, 290.5], "p2": [498.5, 301.5]}))
    # the only message: this file's region ends one past the last column (an exclusive bound)
    assert n == 1 and [lvl for lvl, _ in rv.messages] == ["warning"]
    assert "exclusive bound" in rv.messages[0][1]
    (m,) = rv.measurements
    assert m.frame_index == 0
    assert m.length_mm == pytest.approx(10.6, rel=0.01)
    assert m.calibration_source == "us_region"
    data = player_data(cine, rv, "/msus/frames/t/", "t")
    assert data["calipers"][0]["text"].endswith("mm") and data["calipers"][0]["ok"] is True
    assert data["ack"] == {"sid": "s1", "seq": 1}


def test_caliper_across_regions_is_refused_with_reason():
    cine, rv = _review(DUAL)
    rv.handle_log(_log("s", {"type": "caliper_add", "frame": 0, "p1": [300, 200], "p2": [400, 200]}))
    assert rv.measurements == []
    (level, text), = rv.take_messages()
    assert level == "error" and "different ultrasound regions" in text and "\n" not in text
    # inside one region: mm from that region's own spacing
    rv.handle_log({"sid": "s", "events": [{"seq": 2, "type": "caliper_add", "frame": 0, "p1": [350, 100], "p2": [450, 100]}]})
    (m,) = rv.measurements
    assert m.length_mm == pytest.approx(100 * 0.38265, rel=1e-3)


def test_caliper_off_the_image_is_an_error_not_a_crash():
    cine, rv = _review(DUAL)
    rv.handle_log(_log("s", {"type": "caliper_add", "frame": 0, "p1": [10, 10], "p2": [900, 10]}))
    assert rv.measurements == [] and rv.messages[0][0] == "error" and "outside" in rv.messages[0][1]


def test_events_are_applied_once_and_a_new_player_session_restarts_numbering():
    cine, rv = _review(CX50)
    ev = {"type": "caliper_add", "frame": 1, "p1": [400, 300], "p2": [450, 300]}
    assert rv.handle_log(_log("a", ev)) == 1
    assert rv.handle_log(_log("a", ev)) == 0  # same log resent (rerun coalescing)
    assert rv.handle_log(_log("b", ev)) == 1  # page reloaded: new player session
    assert len(rv.measurements) == 2
    assert rv.handle_log("garbage") == 0
    # events stamped for another loop (sent just before switching) are passed over
    other = {"sid": "b", "events": [dict(ev, seq=2, loop="old"), dict(ev, seq=3, loop="this")]}
    assert rv.handle_log(other, loop_id="this") == 1 and len(rv.measurements) == 3


def test_drag_an_end_recomputes_length_and_keeps_identity():
    cine, rv = _review(CX50)
    m = rv.add_caliper(0, (400, 300), (440, 300))
    rv.handle_log(_log("s", {"type": "caliper_move", "id": m.id, "frame": 0, "p1": [400, 300], "p2": [480, 300]}))
    (m2,) = rv.measurements
    assert m2.id == m.id and m2.length_px == pytest.approx(80)
    assert m2.length_mm == pytest.approx(80 * 0.26229, rel=1e-3)


def test_marks_autolabel_and_retraction():
    cine, rv = _review(CX50)
    rv.handle_log(_log("s", {"type": "mark", "which": "rest", "frame": 0}, {"type": "mark", "which": "contraction", "frame": 1}))
    assert (rv.rest_frame, rv.contraction_frame) == (0, 1)
    a = rv.add_caliper(0, (400, 300), (440, 300))
    b = rv.add_caliper(1, (400, 300), (460, 300))
    assert (a.label, b.label) == (LABEL_REST, LABEL_CONTRACTION)
    assert rv.add_caliper(0, (400, 320), (410, 320)).label == ""  # one auto 'gap at rest' per frame
    pg = rv.paired()
    assert pg.retraction_mm == pytest.approx(20 * 0.26229, rel=1e-3)
    rv.relabel(b.id, "note")  # free text is a note: the role, and so Δgap, stay
    assert rv.measurements[1].note == "note" and rv.paired() is not None
    rv.set_role(b.id, "other")
    assert rv.paired() is None
    rv.delete(a.id)
    assert [m.id for m in rv.measurements if m.id == a.id] == []


def test_uncalibrated_then_manual_calibration_from_two_points():
    cine, rv = _review(NOCAL)
    m = rv.add_caliper(0, (100, 100), (200, 100))
    assert m.length_mm is None and "uncalibrated" in m.distance.label
    rv.handle_log(_log("s", {"type": "calib_points", "frame": 0, "p1": [50, 50], "p2": [50, 250]}))
    rv.set_manual_calibration(20.0)  # 20 mm over 200 px
    (m2,) = rv.measurements
    assert m2.length_mm == pytest.approx(10.0) and m2.calibration_source == "manual"
    with pytest.raises(MsusError):
        rv.set_manual_calibration(-1)


def test_manual_calibration_from_a_typed_scale():
    cine, rv = _review(NOCAL)
    rv.add_caliper(0, (100, 100), (200, 100))
    cal = rv.set_manual_mm_per_px(0.075)
    assert cal.source == "manual" and "0.075 mm/px typed" in cal.detail
    assert rv.measurements[0].length_mm == pytest.approx(7.5)
    for bad in (0, -1, float("nan"), 1e308, "x"):
        with pytest.raises(MsusError):
            rv.set_manual_mm_per_px(bad)


def test_manual_calibration_is_fallback_unless_override():
    cine, rv = _review(CX50)
    m = rv.add_caliper(0, (400, 300), (500, 300))
    rv.calib_points = ((0, 0), (0, 100))
    rv.set_manual_calibration(50.0)  # 0.5 mm/px, but the file has a region calibration
    assert rv.measurements[0].calibration_source == "us_region"
    rv.set_override(True)
    assert rv.measurements[0].calibration_source == "manual"
    assert rv.measurements[0].length_mm == pytest.approx(50.0)
    rv.clear_manual_calibration()
    assert rv.measurements[0].length_mm == pytest.approx(m.length_mm)


def test_measurement_listener_hook_sees_every_change():
    cine, rv = _review(CX50)
    seen = []
    fn = rv.on_measurement_changed(lambda action, m, r: seen.append((action, m.id)))
    try:
        m = rv.add_caliper(0, (400, 300), (440, 300))
        rv.move_caliper(m.id, (400, 300), (450, 300))
        rv.relabel(m.id, LABEL_REST)
        rv.delete(m.id)
    finally:
        rv.remove_listener(fn)
    assert [a for a, _ in seen] == ["added", "moved", "relabelled", "deleted"]
    assert {i for _, i in seen} == {m.id}


def test_player_data_is_small_and_carries_overlays():
    frames_ = np.broadcast_to(np.zeros((1, 600, 800), np.uint8), (600, 600, 800))  # no copy
    cine = Cine.from_frames(frames_, fps=30, calibration=Calibration.manual(0.1))
    rv = Review.for_cine(cine, "k")
    for k in range(5):
        rv.add_caliper(k, (100, 100), (200, 150))
    rv.extra_shapes.append({"kind": "polyline", "points": [[1, 2], [3, 4]], "label": "defect", "frame": 3})
    rv.view, rv.rest_frame, rv.contraction_frame = "pair", 10, 40
    d = player_data(cine, rv, "/u/", "tok")
    import json

    assert len(json.dumps(d)) < 20_000  # 600 frame times + 5 calipers, no pixels
    assert d["pair"] == [10, 40] and d["shapes"][0]["label"] == "defect"
    assert d["cal"] == {"mx": 0.1, "my": 0.1}


# ---- sources and settings ---------------------------------------------------------------------
def test_server_path_never_leaves_the_data_folder(tmp_path):
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.dcm").write_bytes(b"x")
    (tmp_path / "secret.dcm").write_bytes(b"x")
    os.symlink(tmp_path / "secret.dcm", root / "link.dcm")
    assert sources.resolve_under(root, "sub/a.dcm") == (root / "sub" / "a.dcm").resolve()
    for bad in ("../secret.dcm", str(tmp_path / "secret.dcm"), "link.dcm", "sub/../../secret.dcm"):
        with pytest.raises(LoadError, match="outside the data folder"):
            sources.resolve_under(root, bad)
    with pytest.raises(LoadError, match="no such file"):
        sources.resolve_under(root, "nope.dcm")


def test_upload_beyond_limit_is_refused():
    class Up:
        name = "big.dcm"
        size = 3 * 2**20 + 1

        def getbuffer(self):  # pragma: no cover - never read when too large
            raise AssertionError

    with pytest.raises(TooLarge, match="upload limit is 3 MB"):
        sources.upload_source(Up(), 3)


def test_settings_from_env_and_file(tmp_path):
    f = tmp_path / "msus.toml"
    f.write_text('[app]\nupload_limit_mb = 10\ndata_dir = "/srv/us"\n')
    s = load_settings(env={"MSUS_CONFIG": str(f), "MSUS_JPEG_QUALITY": "80"})
    assert (s.upload_limit_mb, str(s.data_dir), s.jpeg_quality) == (10, "/srv/us", 80)
    assert load_settings(env={}, config_file=None).upload_limit_mb == Settings().upload_limit_mb == 1024
    with pytest.raises(MsusError, match="integer"):
        load_settings(env={"MSUS_UPLOAD_LIMIT_MB": "lots"})
    with pytest.raises(MsusError):
        load_settings(env={"MSUS_UPLOAD_LIMIT_MB": "0"})


# ---- frame store ------------------------------------------------------------------------------
def test_frame_store_tokens_and_bounds():
    rng = np.random.default_rng(0)
    loops = [Cine.from_frames(rng.integers(0, 255, (4, 120, 160), dtype=np.uint8), fps=10) for _ in range(3)]
    st_ = frames.FrameStore(max_bytes=60_000, max_tokens=2)
    t0 = st_.register(loops[0])
    assert len(t0) >= 30 and st_.register(loops[0], token=t0) == t0
    jpg = st_.jpeg(t0, 2)
    img = cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert img.shape == (120, 160) and np.abs(img.astype(int) - loops[0].frame(2)).mean() < 40
    assert st_.jpeg(t0, 4) is None and st_.jpeg("guess", 0) is None
    for i in range(4):
        st_.jpeg(t0, i)
    t1 = st_.register(loops[1])
    for i in range(4):
        assert st_.jpeg(t1, i) is not None
    assert st_.nbytes <= 60_000 + len(jpg)  # bounded (one frame of slack while encoding)
    t2 = st_.register(loops[2])
    assert t0 not in st_ and st_.jpeg(t0, 0) is None  # oldest token revoked
    assert st_.jpeg(t2, 0) is not None


def test_frame_store_keeps_a_bounded_number_of_loops():
    rng = np.random.default_rng(1)
    st_ = frames.FrameStore(max_loops=2)
    loops = [Cine.from_frames(rng.integers(0, 255, (2, 16, 16), dtype=np.uint8)) for _ in range(3)]
    toks = [st_.register(c) for c in loops]
    assert toks[0] not in st_ and toks[1] in st_ and toks[2] in st_
    assert st_.jpeg(toks[0], 0) is None and st_.jpeg(toks[2], 1) is not None


def test_an_upload_opens_through_the_loader():
    import io as _io

    class Upload(_io.BytesIO):
        name = CX50.name
        file_id = "f1"

        @property
        def size(self):
            return len(self.getbuffer())

    src = sources.upload_source(Upload(CX50.read_bytes()), 1024)
    assert src.key.startswith("upload:f1:")
    cine = sources.open_source(src)
    assert len(cine) == 2 and cine.calibration.calibrated
    bad = sources.upload_source(type("U", (Upload,), {"file_id": "f2"})(b"not a loop at all" * 10), 1024)
    with pytest.raises(MsusError):
        sources.open_source(bad)


def test_frame_route_serves_only_registered_tokens(monkeypatch):
    from starlette.requests import Request
    from starlette.routing import Match

    store = frames.FrameStore()
    monkeypatch.setattr(frames, "_STORE", store)
    cine = Cine.from_frames(np.full((3, 30, 40), 128, np.uint8), fps=10)
    token = store.register(cine)
    (route,) = frames.routes("/viewer")

    def get(path):
        scope = {"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""}
        match, child = route.matches(scope)
        if match is not Match.FULL:
            return None
        scope.update(child)
        return route.endpoint(Request(scope))

    url = frames.frame_url_base(token, "/viewer")
    r = get(url + "2.jpg")
    assert r.status_code == 200 and r.media_type == "image/jpeg" and r.body[:2] == b"\xff\xd8"
    assert "private" in r.headers["cache-control"]
    for bad in (url + "3.jpg", frames.frame_url_base("nope", "/viewer") + "0.jpg"):
        assert get(bad).status_code == 404, bad
    assert get(url + "x.jpg").status_code == 404
    assert get(f"/msus/frames/{token}/0.jpg") is None  # only under the base path

    def decode(i):
        if i == 1:
            raise LoadError("frame 2 is truncated")
        return np.zeros((30, 40), np.uint8)

    broken = Cine(n_frames=3, rows=30, columns=40, samples_per_pixel=1, decode=decode)
    url = frames.frame_url_base(store.register(broken), "/viewer")
    assert get(url + "0.jpg").status_code == 200 and get(url + "1.jpg").status_code == 422


def test_sample_listing_skips_sidecars_and_lists_frame_folders_once(tmp_path):
    (tmp_path / "b.dcm").write_bytes(b"x")
    (tmp_path / "b.truth.json").write_text("{}")
    (tmp_path / "NOTICE.md").write_text("")
    (tmp_path / ".hidden.dcm").write_bytes(b"x")
    stills = tmp_path / "a_frames"
    stills.mkdir()
    for i in range(3):
        (stills / f"f{i}.png").write_bytes(b"x")
    names = [str(p.relative_to(tmp_path)) for p in sources.list_loops(tmp_path)]
    assert names == ["a_frames", "b.dcm"]
    assert sources.list_loops(tmp_path / "missing") == []
