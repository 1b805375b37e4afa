"""The player's JavaScript parts (``msus/ui/player_js/``) and how they are joined (no build step)."""

from __future__ import annotations

import re

from msus.ui import player


def test_parts_are_joined_in_order_and_each_part_is_small():
    js = player.player_js(test_api=False)
    heads = re.findall(r"^// ---- player_js/(\S+)$", js, flags=re.M)
    assert heads == list(player.JS_PARTS)
    assert js.count("export default function") == 1 and heads[-1] == "main.js"
    for name in player.JS_PARTS + (player.TEST_API_PART,):
        lines = (player._JS_DIR / name).read_text(encoding="utf-8").count("\n")
        assert lines <= 400, f"{name}: {lines} lines"


def test_the_shipped_player_has_no_test_global(monkeypatch):
    monkeypatch.delenv(player.TEST_API_ENV, raising=False)
    assert "window.__msusPlayer =" not in player.player_js()
    monkeypatch.setenv(player.TEST_API_ENV, "1")
    with_api = player.player_js()
    assert "window.__msusPlayer = testApi(player)" in with_api
    assert with_api.index("player_js/testapi.js") < with_api.index("player_js/main.js")


def test_each_method_is_defined_once_across_the_parts():
    names = []
    for name in player.JS_PARTS:
        text = (player._JS_DIR / name).read_text(encoding="utf-8")
        names += re.findall(r"^  ([a-zA-Z]\w*)\([^)]*\) \{", text, flags=re.M)
    dupes = {n for n in names if names.count(n) > 1}
    assert not dupes, dupes


def test_the_player_is_given_a_scale_only_where_one_scale_holds():
    """The region rule stays in Python (Calibration.measure): with US regions the player gets none."""
    import msus
    from conftest import DATA
    from msus.calibration import Calibration

    assert player.calibration_json(Calibration.manual(0.1)) == {"mx": 0.1, "my": 0.1}
    cine = msus.load(DATA / "pydicomdata_OBXXXX1A_rle_2frame_cx50.dcm")
    assert cine.calibration.source == "us_region" and player.calibration_json(cine.calibration) == {}
    js = player.player_js(test_api=True)
    assert "cal.regions" not in js and ".area" not in js  # no region lookup re-implemented in the browser


def test_review_asks_the_player_to_play_once():
    import numpy as np

    from msus.cine import Cine
    from msus.ui.review import Review

    cine = Cine.from_frames(np.zeros((5, 8, 8), np.uint8), fps=10)
    rv = Review.for_cine(cine, "k")
    rv.play()
    first = rv.command
    assert first["play"] is True and "seek" not in first
    rv.play(from_frame=3)
    assert rv.command["seq"] == first["seq"] + 1 and rv.command["seek"] == 3 and rv.frame_index == 3
    data = player.player_data(cine, rv, "/u/", "tok")
    assert data["command"] == rv.command
