"""Settings with one meaning each, the open-loops bound, the log (levels, privacy), the shared words."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from msus.cine import Cine
from msus.config import data_dir, load_settings
from msus.errors import MsusError, StoreError
from msus.logs import SafeFormatter, configure, level
from msus.numbers import opt_float, opt_int
from msus.open_loops import OpenLoops
from msus.terms import CLASSIFICATION_LABELS, CalibrationSource, Classification, FindingStatus, length_label

ROOT = Path(__file__).resolve().parents[1]


# ---- settings ------------------------------------------------------------------------------------
def test_loops_dir_and_data_dir_mean_one_thing_each(tmp_path):
    s = load_settings({"MSUS_LOOPS_DIR": str(tmp_path / "loops"), "MSUS_DATA_DIR": str(tmp_path / "data")},
                      config_file=_empty(tmp_path))
    assert s.loops_dir == tmp_path / "loops" and s.data_dir == tmp_path / "data"
    assert data_dir({"MSUS_DATA_DIR": str(tmp_path / "data")}) == tmp_path / "data"


def test_the_store_and_the_settings_agree_on_the_data_dir(tmp_path, monkeypatch):
    from msus.store import data_dir as store_data_dir

    monkeypatch.setenv("MSUS_DATA_DIR", str(tmp_path / "d"))
    assert store_data_dir() == load_settings(config_file=_empty(tmp_path)).data_dir == tmp_path / "d"
    monkeypatch.delenv("MSUS_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert store_data_dir() == load_settings(config_file=_empty(tmp_path)).data_dir == tmp_path / "xdg" / "msus"


def _empty(tmp_path: Path) -> Path:
    p = tmp_path / "empty.toml"
    p.write_text("")
    return p


# ---- open loops ----------------------------------------------------------------------------------
def _cine(closed: list, name: str) -> Cine:
    arr = np.zeros((2, 8, 8), np.uint8)
    return Cine.from_frames(arr, fps=10, source_name=name, close=lambda: closed.append(name))


def test_open_loops_bound_closes_the_least_recently_used():
    closed: list[str] = []
    forgotten: list[str] = []
    loops = OpenLoops(2, on_close=lambda c: forgotten.append(c.source_name))
    a = loops.get("a", lambda: _cine(closed, "a"))
    loops.get("b", lambda: _cine(closed, "b"))
    assert loops.get("a", lambda: pytest.fail("a is open")) is a  # a is now the most recent
    loops.get("c", lambda: _cine(closed, "c"))
    assert closed == ["b"] == forgotten and len(loops) == 2 and "b" not in loops
    loops.discard("a")
    assert closed == ["b", "a"]
    loops.discard("nothing")
    loops.close_all()
    assert closed == ["b", "a", "c"] and len(loops) == 0


def test_the_app_bounds_open_loops_by_the_setting(monkeypatch):
    from msus.ui import sources

    monkeypatch.setenv("MSUS_MAX_OPEN_LOOPS", "3")
    monkeypatch.setattr(sources, "_LOOPS", None)
    assert sources.open_loops().max_open == 3


# ---- logging -------------------------------------------------------------------------------------
def test_log_level_setting():
    assert level({}) is None and level({"MSUS_LOG_LEVEL": "debug"}) == logging.DEBUG
    with pytest.raises(MsusError, match="MSUS_LOG_LEVEL"):
        level({"MSUS_LOG_LEVEL": "loud"})


def test_tracebacks_keep_the_chain_but_never_a_message():
    name = "Doe^" + "Jane.dcm"  # (source lines are in the traceback: the name must not be one)
    try:
        try:
            raise ValueError(name)
        except ValueError as err:
            raise StoreError(f"cannot read {name}") from err
    except StoreError:
        text = SafeFormatter().formatException(sys.exc_info())
    assert "Doe" not in text
    assert "ValueError (message withheld)" in text and "msus.errors.StoreError (message withheld)" in text
    assert "direct cause" in text and "test_settings_logging.py" in text


def test_library_records_keep_no_text():
    rec = logging.LogRecord("pydicom", logging.WARNING, __file__, 1, "Invalid value for VR PN: %r", ("Doe^Jane",), None)
    out = SafeFormatter("%(name)s %(levelname)s %(message)s").format(rec)
    assert out == "pydicom WARNING (library message withheld)"
    own = logging.LogRecord("msus.io", logging.INFO, __file__, 1, "frame %d", (3,), None)
    assert SafeFormatter("%(message)s").format(own) == "frame 3"


def test_configure_once_for_the_app(tmp_path):
    log = tmp_path / "app.log"
    env = {"MSUS_LOG": str(log), "MSUS_LOG_LEVEL": "INFO"}
    target = logging.getLogger("msus")
    before = list(target.handlers)
    state = (target.level, target.propagate)
    for h in before:  # an app test in this process may have configured it already
        target.removeHandler(h)
    try:
        configure(app=True, env=env)
        configure(app=True, env=env)  # a Streamlit rerun
        mine = [h for h in target.handlers if getattr(h, "_msus", False)]
        assert len(mine) == 1
        logging.getLogger("msus.some.module").info("hello %d", 3)
        mine[0].flush()
        assert "INFO msus.some.module: hello 3" in log.read_text()
    finally:
        for h in list(target.handlers):
            target.removeHandler(h)
            h.close()
        for h in before:
            target.addHandler(h)
        target.setLevel(state[0])
        target.propagate = state[1]


def test_cli_log_file_has_the_traceback_the_terminal_one_line(tmp_path):
    log = tmp_path / "cli.log"
    bad = tmp_path / "Doe^Jane.dcm"
    bad.write_bytes(b"DICM" * 50)
    env = {"PATH": "/usr/bin:/bin", "MSUS_LOG": str(log), "MSUS_LOG_LEVEL": "DEBUG", "PYTHONPATH": str(ROOT),
           "MSUS_DATA_DIR": str(tmp_path / "data")}
    r = subprocess.run([sys.executable, "-m", "msus", "info", str(bad)], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and r.stderr.startswith("msus: error:")
    text = log.read_text()
    assert "Traceback" in text and "(message withheld)" in text
    assert "Doe" not in text  # the file name may carry the patient's name: never in the log


def test_a_bad_log_level_is_one_line_in_the_cli(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "MSUS_LOG_LEVEL": "loud", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "msus", "info", str(tmp_path)], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 1 and r.stderr == "msus: error: setting MSUS_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, got 'LOUD'\n"


# ---- words and numbers ---------------------------------------------------------------------------
def test_enums_are_their_strings():
    assert Classification.PARTIAL == "partial" and json.dumps({"c": Classification.NO_DEFECT}) == '{"c": "no_defect"}'
    assert f"{CalibrationSource.US_REGION}" == "us_region" and str(FindingStatus.AMENDED) == "amended"
    assert set(CLASSIFICATION_LABELS) == set(Classification)
    assert Classification("suspected_full_thickness").label == "Suspected full-thickness tear"


def test_one_length_label():
    assert length_label(4.719, 39.3) == "4.72 mm"
    assert length_label(None, 39.34) == "39.3 px (uncalibrated)"
    assert length_label(5.4, None, signed=True) == "+5.40 mm" and length_label(None, -12.0, signed=True) == "-12.0 px (uncalibrated)"
    assert length_label(None, None) == "—"


def test_opt_numbers():
    assert opt_float("1.5") == 1.5 and opt_float(float("nan")) is None and opt_float("abc") is None
    with pytest.raises(StoreError, match="expected a number"):
        opt_float("abc", StoreError)
    assert opt_int("3") == 3 and opt_int(True) is None and opt_int("x") is None
    with pytest.raises(StoreError):
        opt_int("x", StoreError)
