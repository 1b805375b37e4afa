"""Shared test fixtures.

System components (Debian chromium, postgresql, orthanc, dcmtk) are installed by
``scripts/system-deps.sh`` when the README command runs as root.  When one is missing a test
that needs it is skipped with a loud reason -- unless ``MSUS_REQUIRE_ALL=1`` (CI), where the
missing component fails the test.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
SAMPLES = ROOT / "samples"


def require(condition: bool, what: str) -> None:
    """Skip (loudly) or, under MSUS_REQUIRE_ALL=1, fail when a system component is missing."""
    if condition:
        return
    msg = f"MISSING SYSTEM COMPONENT: {what} (run the README test command as root to install it)"
    if os.environ.get("MSUS_REQUIRE_ALL") == "1":
        pytest.fail(msg)
    pytest.skip(msg)


def require_binary(name: str, package: str | None = None) -> str:
    path = shutil.which(name)
    require(path is not None, f"'{name}' (Debian package {package or name})")
    return path


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return SAMPLES


# ---- store (findings store work) --------------------------------------------------------------
@pytest.fixture(scope="session", autouse=True)
def _msus_data_dir(tmp_path_factory):
    """No test ever writes the user's real findings store: point MSUS_DATA_DIR at a temp folder."""
    old = {k: os.environ.pop(k, None) for k in ("MSUS_DATA_DIR", "MSUS_DATABASE_URL")}
    os.environ["MSUS_DATA_DIR"] = str(tmp_path_factory.mktemp("msus-data"))
    yield
    os.environ.pop("MSUS_DATA_DIR", None)
    os.environ.update({k: v for k, v in old.items() if v is not None})


@pytest.fixture(scope="session")
def pg_server():
    """A temporary PostgreSQL server (tests/pgtemp.py) shared by the store and outbox tests."""
    from pgtemp import TempPostgres, find_bindir

    require(find_bindir() is not None, "PostgreSQL server binaries initdb/pg_ctl (Debian package postgresql)")
    with TempPostgres() as pg:
        yield pg


# ---- PACS (DICOMweb work) ----------------------------------------------------------------------
@pytest.fixture(scope="session")
def orthanc(tmp_path_factory):
    """A real Orthanc DICOMweb server on a free loopback port with its own temporary storage."""
    from orthanc import OrthancServer, dicomweb_plugin, orthanc_binary  # tests/orthanc.py

    require(orthanc_binary() is not None, "'Orthanc' (Debian package orthanc)")
    require(dicomweb_plugin() is not None, "the Orthanc DICOMweb plugin (Debian package orthanc-dicomweb)")
    server = OrthancServer(tmp_path_factory.mktemp("orthanc")).start()
    yield server
    server.stop()
