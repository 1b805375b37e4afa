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
