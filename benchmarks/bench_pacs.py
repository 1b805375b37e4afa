"""Opening a loop from a DICOMweb archive: time to the first frame vs fetching the whole instance.

A throw-away Orthanc (Debian ``orthanc`` + ``orthanc-dicomweb``, see ``tests/orthanc.py``) on
loopback receives a 300-frame 600×800 ultrasound loop — built from the real Philips EPIQ test
loop (``tests/data/deiddata_GREYSCALE_CINE_epiq5g_27f.dcm``) cycled to 300 frames — once as JPEG
baseline (how most scanners archive cine) and once uncompressed.

Figures (best of 3 each, every run on a fresh connection and an empty cache):

* ``pacs first frame <ts>`` — from asking for the loop to holding frame 1 decoded
  (:meth:`msus.pacs.client.Archive.open_cine`: metadata + one ``/frames/1`` request + decode);
  baseline = WADO-RS retrieval of the whole instance (what a viewer without frame retrieval waits
  for before it can show anything, not even decoded).  Goal: ratio ≪ 1.
* ``pacs all frames <ts>`` — until the background prefetcher holds all 300 frames (one run);
  baseline the same whole-instance retrieval (ratio near 1 means on-demand costs little in total).

Loopback has no network latency, so on a real network the first-frame advantage grows with the
loop's size.
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import Figure, best_of

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "tests" / "data" / "deiddata_GREYSCALE_CINE_epiq5g_27f.dcm"
N_FRAMES = 300
REPEAT = 3


def _loop_datasets():
    """(name, bytes) of the 300-frame loop as JPEG baseline and as explicit VR little endian."""
    import pydicom
    from PIL import Image
    from pydicom.encaps import encapsulate
    from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

    src = pydicom.dcmread(SOURCE)
    frames = src.pixel_array  # 27×600×800 uint8
    order = [i % len(frames) for i in range(N_FRAMES)]
    out = []
    for name in ("jpeg", "raw"):
        ds = pydicom.dcmread(SOURCE, stop_before_pixels=True)
        ds.SOPInstanceUID = generate_uid()
        ds.SeriesInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.NumberOfFrames = N_FRAMES
        if name == "jpeg":
            jpgs = []
            for f in frames:
                b = io.BytesIO()
                Image.fromarray(f).save(b, "JPEG", quality=90)
                jpgs.append(b.getvalue())
            ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
            ds.PixelData = encapsulate([jpgs[i] for i in order])
            ds["PixelData"].VR = "OB"
            ds["PixelData"].is_undefined_length = True
            ds.LossyImageCompression = "01"
        else:
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.PixelData = np.ascontiguousarray(frames[order]).tobytes()
            ds["PixelData"].VR = "OB"
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        out.append((name, buf.getvalue(), (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))))
    return out


def run() -> list[Figure]:
    sys.path.insert(0, str(ROOT / "tests"))
    from orthanc import OrthancServer, dicomweb_plugin, orthanc_binary

    from msus.pacs.client import Archive
    from msus.pacs.config import PacsConfig

    if orthanc_binary() is None or dicomweb_plugin() is None:
        print("# pacs: Orthanc with its DICOMweb plugin is not installed (scripts/system-deps.sh); skipped")
        return []
    figures = []
    with tempfile.TemporaryDirectory() as tmp, OrthancServer(Path(tmp)) as server:
        cfg = PacsConfig(url=server.dicomweb_url, timeout_s=60, cache_mb=1024)
        loops = _loop_datasets()
        with Archive(cfg) as a:
            for _, data, _uids in loops:
                a.store([data])
        for name, data, uids in loops:
            def first_frame():
                with Archive(cfg) as a:
                    cine = a.open_cine(*uids, prefetch=False)
                    cine.frame(0)
                    cine.close()

            def whole():
                with Archive(cfg) as a:
                    a.retrieve_instance(*uids)

            def all_frames():
                with Archive(cfg) as a:
                    cine = a.open_cine(*uids, prefetch=True)
                    assert cine.remote_frames.wait(120) and cine.remote_frames.error is None
                    cine.close()

            t_whole = best_of(whole, REPEAT)
            t_first = best_of(first_frame, REPEAT)
            t_all = best_of(all_frames, repeat=1)
            size = f"{len(data) / 2**20:.0f} MB"
            figures.append(Figure(
                f"pacs first frame ({name}, {N_FRAMES}f 600x800)", t_first * 1000, "ms", t_whole * 1000,
                t_first / t_whole, f"baseline: whole instance via WADO-RS ({size}); goal ratio << 1",
            ))
            figures.append(Figure(
                f"pacs all frames ({name}, {N_FRAMES}f 600x800)", t_all * 1000, "ms", t_whole * 1000,
                t_all / t_whole, "on-demand + prefetch until all frames cached, vs whole instance",
            ))
    return figures


if __name__ == "__main__":
    from benchmarks.common import format_figure

    for f in run():
        print(format_figure(f))
