"""Memory bounded in bytes (issue 12, item 2): bombs read under ``prlimit --as``, the shared frame cache."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, require_binary

READ_ALL = """
import sys
import msus
from msus.errors import MsusError
try:
    with msus.load(sys.argv[1]) as c:
        for i in range(len(c)):
            c.frame(i)
    out = f"read {len(c)} frames"
except MsusError as e:
    out = f"{type(e).__name__}: {e}"
print(out)
# this process's own peak (VmHWM): ru_maxrss would carry the parent's peak over fork + exec
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(int(hwm.split()[1]) // 1024)
"""
AS_LIMIT = 4_000_000_000  # bytes of address space for the reader process


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    import attack_corpus

    d = tmp_path_factory.mktemp("bombs")
    return {"tiff": attack_corpus.tiff_bomb(d / "pages.tif", pages=4),
            "deflate": attack_corpus.deflate_bomb(d / "bomb.dcm")}


def _read_all(path, **env):
    prlimit = require_binary("prlimit", "util-linux")
    e = dict(os.environ, PYTHONPATH=str(ROOT), **env)
    r = subprocess.run([prlimit, f"--as={AS_LIMIT}", sys.executable, "-c", READ_ALL, str(path)],
                       capture_output=True, text=True, env=e, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    outcome, rss = r.stdout.strip().splitlines()
    return outcome, int(rss)


def test_small_files_are_small(bombs):
    assert bombs["tiff"].stat().st_size < 5 << 20 and bombs["deflate"].stat().st_size < 5 << 20


def test_tiff_of_16384_pages_is_refused_before_decoding(bombs):
    outcome, rss = _read_all(bombs["tiff"])
    assert outcome.startswith("TooLarge: ") and "MSUS_MAX_FRAME_MB" in outcome and "64 MB frame limit" in outcome
    assert rss < 1000  # the libraries themselves take ~0.6 GB; inflating would take 2.5 GB


def test_tiff_pages_allowed_are_read_in_bounded_memory(bombs):
    # a 256 MB frame allowed: every page is read, the decoded-frame cache stays at its byte bound
    outcome, rss = _read_all(bombs["tiff"], MSUS_MAX_FRAME_MB="300", MSUS_FRAME_CACHE_MB="300")
    assert outcome == "read 4 frames"
    assert rss < 1800  # one cached 256 MB frame + Pillow's working copies, not 4 × 256 MB kept


def test_deflate_bomb_is_refused_while_inflating(bombs):
    outcome, rss = _read_all(bombs["deflate"])
    assert outcome.startswith("TooLarge: ") and "MSUS_MAX_INFLATE_MB" in outcome
    assert rss < 1000  # inflated in 1 MB steps to a temporary file, never whole in memory


def test_frame_cache_is_bounded_in_bytes_across_loops(monkeypatch):
    from msus.cine import FRAME_CACHE, Cine

    monkeypatch.setenv("MSUS_FRAME_CACHE_MB", "3")
    loops = [Cine.from_frames(np.zeros((20, 512, 512), np.uint8)) for _ in range(3)]  # 256 KiB frames
    for c in loops:
        for i in range(len(c)):
            c.frame(i)
    assert FRAME_CACHE.nbytes <= 3 << 20
    assert len(loops[2]._cache) == 12 and len(loops[0]._cache) == 0  # least recently used went first
    for c in loops:
        c.close()
    assert sum(len(c._cache) for c in loops) == 0


def test_limits_are_settings_with_one_line_errors(monkeypatch):
    from msus.errors import MsusError, TooLarge
    from msus.limits import check_frame, limits

    assert limits().max_frame_mb == 64 and limits({"MSUS_MAX_LOOP_MB": "10"}).max_loop_mb == 10
    with pytest.raises(MsusError, match="MSUS_FRAME_CACHE_MB must be a whole number"):
        limits({"MSUS_FRAME_CACHE_MB": "lots"})
    monkeypatch.setenv("MSUS_MAX_LOOP_MB", "10")
    with pytest.raises(TooLarge, match=r"^x: 100 frames of 800×600 decode to 46 MB, beyond the 10 MB loop limit \(setting MSUS_MAX_LOOP_MB\)$"):
        check_frame("x", 600, 800, 1, 100)


def test_frame_tokens_bound_to_browser_and_session():
    from msus.cine import Cine
    from msus.ui.frames import FrameStore

    fs = FrameStore(max_bytes=1 << 20)
    c = Cine.from_frames(np.zeros((3, 16, 16), np.uint8))
    t = fs.register(c, browser="cookie-a", session=7)
    other = fs.register(c, browser="cookie-b", session=8)
    assert t != other and len(t) >= 32
    assert fs.jpeg(t, 0, browser="cookie-a") is not None
    assert fs.jpeg(t, 0, browser="cookie-b") is None and fs.jpeg(t, 0) is None  # another browser: nothing
    fs.revoke_session(7)
    assert fs.jpeg(t, 0, browser="cookie-a") is None and t not in fs  # the session ended: its token died
    assert fs.jpeg(other, 0, browser="cookie-b") is not None  # other sessions keep theirs
    fs.revoke_session(8)
    assert fs.nbytes == 0  # the loop and its JPEGs are let go with the last token


def test_one_byte_lru_under_every_frame_cache():
    """ByteLRU bounds bytes and drops a whole loop's entries; the player's frame store sits on it."""
    from msus.cine import Cine
    from msus.lru import ByteLRU
    from msus.ui.frames import FrameStore

    lru = ByteLRU(10)
    for i in range(4):
        lru.put(("a" if i % 2 else "b", i), b"xxxx")
    assert lru.nbytes <= 10 and len(lru) == 2 and (("a", 3) in lru) and (("b", 2) in lru)
    assert lru.discard_where(lambda k: k[0] == "a") == 1 and lru.nbytes == 4 and ("a", 3) not in lru

    fs = FrameStore(max_bytes=1 << 20)
    assert isinstance(fs._jpegs, ByteLRU)
    rng = np.random.default_rng(3)
    c = Cine.from_frames(rng.integers(0, 255, (3, 64, 64), dtype=np.uint8))
    t = fs.register(c)
    assert all(fs.jpeg(t, i) is not None for i in range(3)) and fs.nbytes > 0
    fs.forget(c)
    assert fs.nbytes == 0 and t not in fs
