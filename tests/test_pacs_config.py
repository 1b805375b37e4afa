"""PACS configuration, frame-encoding sniffing and query helpers (no server needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian as EXPLICIT_LE
from pydicom.uid import JPEG2000Lossless as J2K_LOSSLESS
from pydicom.uid import JPEGBaseline8Bit as JPEG_BASELINE
from pydicom.uid import JPEGLSLossless as JPEG_LS
from pydicom.uid import RLELossless as RLE

from msus.errors import PacsError
from msus.pacs.client import Archive
from msus.pacs.config import PacsConfig, PacsConfigError, configured, load_config
from msus.pacs.frames import FrameCache, dataset_from_metadata, sniff_frame_syntax
from msus.pacs.query import check_uid, date_range

DATA = Path(__file__).parent / "data"


# ---- configuration ---------------------------------------------------------------------------
def test_environment_config():
    cfg = load_config({
        "MSUS_PACS_URL": "https://pacs.example.org/dicom-web/",
        "MSUS_PACS_AUTH": "basic",
        "MSUS_PACS_USER": "sono",
        "MSUS_PACS_PASSWORD": "pw-123",
        "MSUS_PACS_TIMEOUT_S": "7.5",
    })
    assert cfg.url == "https://pacs.example.org/dicom-web"
    assert cfg.auth == "basic" and cfg.user == "sono"
    assert cfg.verify_tls is True  # on by default
    assert cfg.timeouts == (7.5, 7.5)
    assert "pw-123" not in repr(cfg) and "pw-123" not in cfg.describe()
    assert "TLS verified" in cfg.describe()


def test_file_config_and_environment_precedence(tmp_path):
    f = tmp_path / "pacs.toml"
    f.write_text('[pacs]\nurl = "http://archive:8042/dicom-web"\nauth = "bearer"\ntoken = "tok"\nverify_tls = false\n')
    cfg = load_config({"MSUS_PACS_CONFIG": str(f)})
    assert cfg.url == "http://archive:8042/dicom-web" and cfg.auth == "bearer" and cfg.token == "tok"
    assert cfg.verify_tls is False
    assert "tok" not in repr(cfg)
    cfg2 = load_config({"MSUS_PACS_CONFIG": str(f), "MSUS_PACS_URL": "https://other/dicom-web", "MSUS_PACS_VERIFY_TLS": "1"})
    assert cfg2.url == "https://other/dicom-web" and cfg2.token == "tok" and cfg2.verify_tls is True
    assert str(f) in cfg2.source and "environment" in cfg2.source


def test_ca_bundle_path(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    cfg = load_config({"MSUS_PACS_URL": "https://pacs/dicom-web", "MSUS_PACS_VERIFY_TLS": str(ca)})
    assert cfg.verify_tls == str(ca)
    with Archive(cfg) as a:
        assert a._session.verify == str(ca)


@pytest.mark.parametrize(
    "env, match",
    [
        ({}, "no archive configured"),
        ({"MSUS_PACS_URL": "ftp://x/y"}, "http:// or https://"),
        ({"MSUS_PACS_URL": "http://u:p@x/dicom-web"}, "not in the URL"),
        ({"MSUS_PACS_URL": "http://x", "MSUS_PACS_AUTH": "kerberos"}, "one of none, basic, bearer"),
        ({"MSUS_PACS_URL": "http://x", "MSUS_PACS_AUTH": "basic", "MSUS_PACS_USER": "a"}, "MSUS_PACS_PASSWORD"),
        ({"MSUS_PACS_URL": "http://x", "MSUS_PACS_AUTH": "bearer"}, "MSUS_PACS_TOKEN"),
        ({"MSUS_PACS_URL": "http://x", "MSUS_PACS_TIMEOUT_S": "soon"}, "number of seconds"),
        ({"MSUS_PACS_URL": "http://x", "MSUS_PACS_TIMEOUT_S": "0"}, "between 0 and 600"),
        ({"MSUS_PACS_URL": "http://x", "MSUS_PACS_VERIFY_TLS": "maybe"}, "CA bundle"),
        ({"MSUS_PACS_CONFIG": "/no/such/pacs.toml"}, "does not exist"),
    ],
)
def test_bad_config_is_one_clean_line(env, match):
    with pytest.raises(PacsConfigError, match=match) as exc:
        load_config(env)
    assert "\n" not in str(exc.value)


def test_bad_toml(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text("url = [unclosed\n")
    with pytest.raises(PacsConfigError, match="not valid TOML"):
        load_config({"MSUS_PACS_CONFIG": str(f)})
    f.write_text('url = "http://x"\npasword = "typo"\n')
    with pytest.raises(PacsConfigError, match="unknown key"):
        load_config({"MSUS_PACS_CONFIG": str(f)})


def test_configured():
    assert not configured({})
    assert configured({"MSUS_PACS_URL": "http://x"})


def test_auth_reaches_the_session():
    with Archive(PacsConfig(url="http://x/dicom-web", auth="bearer", token="abc")) as a:
        assert a._session.headers["Authorization"] == "Bearer abc"
    with Archive(PacsConfig(url="http://x/dicom-web", auth="basic", user="u", password="p")) as a:
        assert a._session.auth == ("u", "p")
    with Archive(PacsConfig(url="http://x/dicom-web")) as a:
        assert a._session.auth is None and "Authorization" not in a._session.headers
        assert a._session.verify is True


# ---- helpers ---------------------------------------------------------------------------------
def test_uid_and_dates():
    assert check_uid(" 1.2.840.10008 ") == "1.2.840.10008"
    for bad in ("", "1..2", "abc", "1.2/3", "1" * 65):
        with pytest.raises(PacsError):
            check_uid(bad)
    assert date_range(None, None) is None
    assert date_range("20200101", None) == "20200101-"
    assert date_range(None, "20201231") == "-20201231"
    assert date_range("20200101", "20200101") == "20200101"
    with pytest.raises(PacsError):
        date_range("2020-01-01", None)


def _frames_of(path: Path) -> tuple[pydicom.Dataset, list[bytes]]:
    from pydicom.encaps import generate_frames

    ds = pydicom.dcmread(path)
    n = int(ds.get("NumberOfFrames", 1) or 1)
    return ds, list(generate_frames(ds.PixelData, number_of_frames=n))


@pytest.mark.parametrize(
    "name, syntax",
    [
        ("pydicom_examples_ybr_color_30f.dcm", JPEG_BASELINE),
        ("pydicomdata_OBXXXX1A_rle_2frame_cx50.dcm", RLE),
        ("pydicomdata_US1_J2KR_logiq700_mskpreset.dcm", J2K_LOSSLESS),
    ],
)
def test_sniff_compressed_frames(name, syntax):
    ds, frames = _frames_of(DATA / name)
    raw = ds.Rows * ds.Columns * ds.SamplesPerPixel * (ds.BitsAllocated // 8)
    assert sniff_frame_syntax(frames[0], raw, ds.PhotometricInterpretation) == syntax


def test_sniff_raw_and_jpeg_ls():
    assert sniff_frame_syntax(b"\x00" * 1200, 1200) == EXPLICIT_LE
    assert sniff_frame_syntax(b"\x00" * 1201, 1200) == EXPLICIT_LE  # padded odd length
    from pydicom.pixels import get_encoder

    arr = (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)
    enc = get_encoder("1.2.840.10008.1.2.4.80")
    if not enc.is_available:
        pytest.skip("no JPEG-LS encoder")
    data = enc.encode(arr, rows=64, columns=64, samples_per_pixel=1, bits_allocated=8, bits_stored=8,
                      pixel_representation=0, photometric_interpretation="MONOCHROME2", number_of_frames=1)
    assert sniff_frame_syntax(data, 64 * 64) == JPEG_LS
    with pytest.raises(Exception, match="unrecognised"):
        sniff_frame_syntax(b"\x12\x34" * 10, 1200)


def test_metadata_json_round_trip():
    ds = pydicom.dcmread(DATA / "pydicom_examples_ybr_color_30f.dcm", stop_before_pixels=True)
    back = dataset_from_metadata(ds.to_json_dict())
    assert back.Rows == ds.Rows and back.SequenceOfUltrasoundRegions[0].PhysicalDeltaX == ds.SequenceOfUltrasoundRegions[0].PhysicalDeltaX
    fetched = []
    meta = {"00281201": {"vr": "OW", "BulkDataURI": "http://h/dicom-web/studies/1/series/2/instances/3/bulk/00281201"},
            "7FE00010": {"vr": "OB", "BulkDataURI": "http://h/dicom-web/studies/1/series/2/instances/3/bulk/7FE00010"}}
    out = dataset_from_metadata(meta, bulk=lambda uri: fetched.append(uri) or b"\x01\x00")
    assert fetched == [meta["00281201"]["BulkDataURI"]]  # pixel data never fetched with the header
    assert out[0x00281201].value == b"\x01\x00"


def test_frame_cache_is_bounded():
    c = FrameCache(max_bytes=1000)
    for i in range(10):
        c.put(i, bytes(300))
    assert c.nbytes <= 1000 and len(c) == 3
    assert c.get(0) is None and c.get(9) is not None
    c.put(7, bytes(300))
    c.put(10, bytes(300))
    assert 7 in c and 8 not in c  # least recently used goes first


def test_store_refuses_non_dicom():
    with Archive(PacsConfig(url="http://127.0.0.1:9/dicom-web", timeout_s=1)) as a:
        with pytest.raises(PacsError, match="not a DICOM"):
            a.store([b"hello"])


def test_annotated_loop_payload_builds_a_new_series():
    import msus
    from msus import export
    from msus.ui.pacs_panel import annotated_loop_payload

    cine = msus.load(DATA / "pydicom_examples_ybr_color_30f.dcm")
    build = annotated_loop_payload(cine, export.from_cine(cine), start=2, stop=8)
    ds = build()
    assert ds.NumberOfFrames == 6 and ds.StudyInstanceUID == cine.meta["StudyInstanceUID"]
    assert ds.SeriesInstanceUID != cine.meta["SeriesInstanceUID"]
    assert ds.BurnedInAnnotation == "YES" and ds.LossyImageCompression == "01"
    assert list(ds.FrameTimeVector)[1:] == pytest.approx(list(np.diff(cine.frame_times_ms[2:8])), abs=1e-3)
    back = msus.load(_bytes(ds))
    assert len(back) == 6 and back.shape == (cine.rows, cine.columns, 3)


def _bytes(ds) -> bytes:
    import io

    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()
