"""The bundled sample loops: deterministic phantom DICOM / MP4 files with ground truth.

Every sample is made by :mod:`msus.synth` from fixed parameters and a fixed seed, and written with
fixed dates and UIDs derived from its name, so ``msus samples`` regenerates byte-identical DICOM
files (the JPEG and MP4 files depend on the installed libjpeg / x264 builds; their pixels are
reproducible within codec tolerance).  Beside each file ``NAME.truth.json`` holds the simulator's
ground truth (:meth:`msus.synth.Phantom.to_dict`) plus the file's own facts.

Patients are fake ("PHANTOM^…"); the files say so in ImageComments.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from msus.errors import SampleError
from pydicom.uid import UltrasoundMultiFrameImageStorage as US_MULTIFRAME_SOP_CLASS

from msus.synth import Phantom, SynthParams, simulate
from msus.synth.dicom import TissueRegion, us_multiframe_dataset, write_dicom
MANUFACTURER = "msus phantom"
#: Fixed acquisition date/time of every sample (they are synthetic; byte-reproducibility).
STUDY_DATE, STUDY_TIME = "20250101", "090000"



@dataclass(frozen=True)
class SampleSpec:
    """One bundled sample: file name, what it shows, how it is stored, and its phantom."""

    name: str  # file name without extension
    fmt: str  # "dicom", "dicom-jpeg" or "mp4"
    description: str
    params: SynthParams
    patient: str = "PHANTOM^RECTUS"
    body_part: str = "THIGH"

    @property
    def filename(self) -> str:
        return self.name + (".mp4" if self.fmt == "mp4" else ".dcm")

    @property
    def truth_filename(self) -> str:
        return self.name + ".truth.json"


_NATIVE = dict(rows=300, columns=400, mm_per_px=0.12, fps=16.0, muscle_depth_mm=6.0, bone_gap_mm=9.0)
_HIRES = dict(rows=480, columns=640, mm_per_px=0.075, fps=16.0, n_frames=48, muscle_depth_mm=6.5, bone_gap_mm=8.0)

SAMPLES: tuple[SampleSpec, ...] = (
    SampleSpec(
        "phantom_full_tear",
        "dicom",
        "rectus-femoris-like full-thickness tear; the stumps retract on contraction (gap 5 -> 10 mm)",
        SynthParams(
            tear="full", gap_rest_mm=5.0, gap_contraction_mm=10.0, tear_offset_mm=-2.0,
            muscle_thickness_mm=16.0, fascicle_angle_deg=14.0, n_frames=40, seed=101, **_NATIVE,
        ),
    ),
    SampleSpec(
        "phantom_partial_tear",
        "dicom",
        "partial tear spanning half the thickness; gap constant (9 mm) while the muscle contracts",
        SynthParams(
            tear="partial", partial_fraction=0.5, partial_position=0.45, gap_rest_mm=9.0,
            gap_contraction_mm=9.0, tear_offset_mm=3.0, muscle_thickness_mm=17.0,
            fascicle_angle_deg=12.0, fascia_tilt_deg=3.0, n_frames=32, seed=102, **_NATIVE,
        ),
        patient="PHANTOM^PARTIAL",
    ),
    SampleSpec(
        "phantom_intact",
        "dicom",
        "intact muscle contracting (no defect)",
        SynthParams(
            tear="none", muscle_thickness_mm=17.0, fascicle_angle_deg=16.0, fascia_tilt_deg=-4.0,
            n_frames=30, seed=103, **_NATIVE,
        ),
        patient="PHANTOM^INTACT",
    ),
    SampleSpec(
        "phantom_full_tear_tilted_jpeg",
        "dicom-jpeg",
        "full-thickness tear in a tilted muscle (7 deg), JPEG baseline YBR_FULL_422 colour (gap 4 -> 8.5 mm)",
        SynthParams(
            tear="full", gap_rest_mm=4.0, gap_contraction_mm=8.5, tear_offset_mm=1.5,
            muscle_thickness_mm=18.0, fascicle_angle_deg=20.0, fascia_tilt_deg=7.0, seed=104, **_HIRES,
        ),
        patient="PHANTOM^TILTED",
    ),
    SampleSpec(
        "phantom_full_tear_tilted",
        "mp4",
        "the tilted full-thickness tear as H.264 MP4 (no calibration in the file: mm/px in the truth)",
        SynthParams(
            tear="full", gap_rest_mm=4.0, gap_contraction_mm=8.5, tear_offset_mm=1.5,
            muscle_thickness_mm=18.0, fascicle_angle_deg=20.0, fascia_tilt_deg=7.0, seed=104, **_HIRES,
        ),
    ),
)


def sample_names() -> list[str]:
    return [s.name for s in SAMPLES]


def get_spec(name: str) -> SampleSpec:
    stem = Path(name).name
    for suffix in (".truth.json", ".dcm", ".mp4"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    for s in SAMPLES:
        if s.name == stem:
            return s
    raise SampleError(f"unknown sample {name!r}; known: {', '.join(sample_names())}")


def default_samples_dir() -> Path | None:
    """The source checkout's ``samples/`` folder, or None when msus is installed elsewhere."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "samples").is_dir():
        return root / "samples"
    return None


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------
def _uid(*parts: str) -> str:
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=["msus-sample", *parts]))


#: Implementation version written into every sample (fixed, not pydicom's: reproducibility).
IMPLEMENTATION_VERSION = "MSUS_PHANTOM"


def _impl_uid() -> str:
    """Fixed Implementation Class UID of the sample writer."""
    return _uid("implementation")


def _header(spec: SampleSpec) -> dict:
    """The sample's descriptive attributes (fixed dates: byte-reproducible files)."""
    return {
        "SpecificCharacterSet": "ISO_IR 100",
        "ImageType": ["DERIVED", "PRIMARY"],
        **{f"{kind}Date": STUDY_DATE for kind in ("Study", "Series", "Content")},
        **{f"{kind}Time": STUDY_TIME for kind in ("Study", "Series", "Content")},
        "AccessionNumber": "",
        "Manufacturer": MANUFACTURER,
        "ManufacturerModelName": "msus.synth",
        "ReferringPhysicianName": "",
        "StudyDescription": "msus phantom",
        "SeriesDescription": spec.description[:64],
        "PatientID": "MSUS-" + spec.name.upper().replace("_", "-")[:56],
        "PatientBirthDate": "",
        "PatientSex": "O",
        "BodyPartExamined": spec.body_part,
        "StudyID": "1",
        "SeriesNumber": 1,
        "InstanceNumber": 1,
        "ImageComments": "Synthetic phantom generated by msus.synth (not a patient). Ground truth: "
        + spec.truth_filename,
    }


def _focus_marker(rgb: np.ndarray, ph: Phantom) -> None:
    """Draw a small orange focus caret at the right edge (in place) -- colour for the JPEG sample."""
    p = ph.params
    y = int(round((p.muscle_depth_mm + 0.5 * p.muscle_thickness_mm) / p.mm_per_px))
    h = max(3, p.rows // 80)
    for k in range(h + 1):
        x0 = p.columns - 1 - (h - k)
        rgb[max(0, y - k) : y + k + 1, x0:, :] = (255, 140, 0)


def _write_dicom(spec: SampleSpec, ph: Phantom, path: Path) -> dict:
    from pydicom.uid import UID

    p = ph.params
    frames = ph.frames
    jpeg = spec.fmt == "dicom-jpeg"
    if jpeg:  # JPEG baseline, YBR_FULL_422 colour
        frames = np.repeat(ph.frames[..., None], 3, axis=3)
        for rgb in frames:
            _focus_marker(rgb, ph)
    fps = round(p.fps)
    ds = us_multiframe_dataset(
        frames,
        fps=p.fps,
        jpeg=jpeg,
        quality=90,
        subsampling="422",
        region=TissueRegion.whole(p.rows, p.columns, p.mm_per_px, reference_px=(p.columns // 2, 0),
                                  transducer_khz=round(p.frequency_mhz * 1000)),
        patient=spec.patient,
        uids={kind: _uid(spec.name, kind) for kind in ("study", "series", "instance")},
        implementation=(_impl_uid(), IMPLEMENTATION_VERSION),
        elements={**_header(spec), "CineRate": fps, "RecommendedDisplayFrameRate": fps, "FrameDelay": 0},
    )
    write_dicom(ds, path)
    return {
        "format": "dicom",
        "sop_class_uid": US_MULTIFRAME_SOP_CLASS,
        "transfer_syntax": str(UID(ds.file_meta.TransferSyntaxUID)),
        "photometric": ds.PhotometricInterpretation,
        "study_instance_uid": ds.StudyInstanceUID,
        "series_instance_uid": ds.SeriesInstanceUID,
        "sop_instance_uid": ds.SOPInstanceUID,
        "calibration": {"source": "us_region", "mm_per_px_x": ph.mm_per_px, "mm_per_px_y": ph.mm_per_px},
    }


def _write_mp4(spec: SampleSpec, ph: Phantom, path: Path) -> dict:
    from fractions import Fraction

    import av

    tmp = path.with_name(path.name + ".tmp.mp4")
    fps = Fraction(ph.params.fps).limit_denominator(1001)
    with av.open(str(tmp), "w", format="mp4", options={"fflags": "+bitexact"}) as out:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = ph.params.columns, ph.params.rows
        stream.pix_fmt = "yuv420p"
        stream.codec_context.flags |= getattr(av.codec.context.Flags, "bitexact", 0)
        if codec == "libx264":
            stream.options = {"crf": "18", "preset": "medium", "threads": "1"}
        for f in ph.frames:
            frame = av.VideoFrame.from_ndarray(np.repeat(f[:, :, None], 3, axis=2), format="rgb24")
            for pkt in stream.encode(frame):
                out.mux(pkt)
        for pkt in stream.encode():
            out.mux(pkt)
    os.replace(tmp, path)
    return {
        "format": "mp4",
        "codec": codec,
        "pix_fmt": "yuv420p",
        "calibration": {"source": "none", "note": "the MP4 carries no calibration; use mm_per_px manually"},
    }


def write_sample(spec: SampleSpec, out_dir: Path, phantom: Phantom | None = None) -> list[Path]:
    """Simulate (unless ``phantom`` is given) and write one sample and its truth JSON.

    Returns
    -------
    list of Path
        The media file and the ``.truth.json``.
    """
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SampleError(f"cannot create {out_dir}: {exc.strerror or exc}") from exc
    ph = phantom if phantom is not None else simulate(spec.params)
    path = out_dir / spec.filename
    try:
        facts = _write_mp4(spec, ph, path) if spec.fmt == "mp4" else _write_dicom(spec, ph, path)
        truth = {"file": spec.filename, "description": spec.description, **facts, "truth": ph.to_dict()}
        tpath = out_dir / spec.truth_filename
        tmp = tpath.with_name(tpath.name + ".tmp")
        tmp.write_text(json.dumps(truth, indent=1, allow_nan=False) + "\n", encoding="utf-8")
        os.replace(tmp, tpath)
    except OSError as exc:
        raise SampleError(f"cannot write {path.name} in {out_dir}: {exc.strerror or exc}") from exc
    return [path, tpath]


def build_samples(out_dir: Path, names: list[str] | None = None, progress=None) -> list[Path]:
    """Write the named samples (default: all) into ``out_dir``; loops shared by two files are
    simulated once.  ``progress(name)`` is called before each file."""
    specs = [get_spec(n) for n in names] if names else list(SAMPLES)
    cache: dict[SynthParams, Phantom] = {}
    written: list[Path] = []
    for spec in specs:
        if progress:
            progress(spec.filename)
        ph = cache.get(spec.params)
        if ph is None:
            ph = cache[spec.params] = simulate(spec.params)
        written += write_sample(spec, out_dir, ph)
    return written


def read_truth(path: str | Path) -> dict:
    """The ground truth beside a sample (``NAME.truth.json``) as a dict (``truth`` key inside)."""
    p = Path(path)
    tp = p if p.name.endswith(".truth.json") else p.with_name(p.stem + ".truth.json")
    try:
        return json.loads(tp.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SampleError(f"cannot read ground truth {tp.name}: {exc}") from exc


__all__ = ["SAMPLES", "SampleSpec", "build_samples", "write_sample", "read_truth", "default_samples_dir", "sample_names"]
