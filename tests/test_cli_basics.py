import subprocess
import sys


def run(*args):
    return subprocess.run([sys.executable, "-m", "msus", *args], capture_output=True, text=True)


def test_version():
    r = run("--version")
    assert r.returncode == 0 and "msus" in r.stdout


def test_usage_error_exits_2():
    r = run("no-such-verb")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
