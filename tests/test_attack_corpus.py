"""Every CLI verb over the attack corpus (``tests/attack_corpus.py``): exit 0, or exit 1 with exactly
one ``msus: error:`` line on stderr; no source file changes; no traceback, no native noise."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from conftest import ROOT

VERBS = {
    "info": lambda f, o: ["info", f],
    "measure": lambda f, o: ["measure", f, "--p1", "10,10", "--p2", "60,40", "--mm-per-px", "1e308"],
    "analyze": lambda f, o: ["analyze", f, "--json"],
    "export-json": lambda f, o: ["export", f, "--format", "json", "--no-store", "--out", o / "x.json"],
    "export-bundle": lambda f, o: ["export", f, "--format", "bundle", "--no-store", "--out", o / "b.zip"],
    "pacs-send": lambda f, o: ["pacs", "send", f],
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    import attack_corpus

    d = tmp_path_factory.mktemp("corpus")
    files = attack_corpus.build(d)
    return d, files


def _digest(files):
    out = {}
    for p in files:
        if p.is_file() and not p.is_symlink():
            out[p.name] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def test_every_verb_over_the_corpus(corpus, tmp_path):
    d, files = corpus
    before = _digest(files)
    env = dict(os.environ, PYTHONPATH=str(ROOT), MSUS_PACS_URL="http://127.0.0.1:9/dicom-web",
               MSUS_DATA_DIR=str(tmp_path / "data"), MSUS_PACS_TIMEOUT_S="2")
    bad = []
    for f in files:
        for verb, argv in VERBS.items():
            out = tmp_path / f"{verb}-{abs(hash(f.name))}"
            r = subprocess.run([sys.executable, "-m", "msus", *map(str, argv(f, out))], capture_output=True,
                               env=env, timeout=120)
            err = r.stderr.decode("utf-8", "replace")
            lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("warning:")]
            ok = r.returncode == 0 and not lines or (r.returncode == 1 and len(lines) == 1 and lines[0].startswith("msus: error: "))
            leaks = [w for w in ("Traceback", "object at 0x", "/site-packages/", "unexpected ", "ValueError") if w in err]
            if not ok or leaks:
                bad.append(f"{verb} {f.name}: rc={r.returncode} {err.strip()[:300]!r}")
    assert not bad, "\n".join(bad)
    assert _digest(files) == before  # no source file changed
