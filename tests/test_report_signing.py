"""A signed and an amended finding on the phantom: the same values in JSON, CSV, SR and PDF.

The PDF pages are rendered to PNG (pypdfium2) for a person to look at:
``artifacts/reports/signed.png`` and ``amended.png`` (gitignored), and their text is read back.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re

import pydicom
import pytest

from conftest import ROOT, SAMPLES
from msus import load
from msus.export import automatic, gather
from msus.export.report import pdf_bytes
from msus.export.sr import build_sr, sr_uids
from msus.export.tables import csv_text, to_json_dict
from msus.measure import LABEL_CONTRACTION, LABEL_REST, make_measurement
from msus.record import headline
from msus.store import open_store

PHANTOM = SAMPLES / "phantom_full_tear.dcm"
ART = ROOT / "artifacts" / "reports"


def pdf_pages(blob: bytes, png=None) -> list[str]:
    """The text of every page; page 1 rendered to ``png`` when given."""
    pdfium = pytest.importorskip("pypdfium2")
    doc = pdfium.PdfDocument(blob)
    texts = [doc[i].get_textpage().get_text_range() for i in range(len(doc))]
    if png is not None:
        png.parent.mkdir(parents=True, exist_ok=True)
        doc[0].render(scale=1.6).to_pil().save(png)
    return texts


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    """Ana analyses, accepts both gaps and drags the contraction end; Dr Bo adds a second read."""
    cine = load(PHANTOM)
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('rep') / 's.sqlite3'}")
    auto = automatic(cine)
    f = {k: v for k, v in auto.finding.items() if k not in ("status", "kind", "reviewer")}
    f["outlines_px"] = {str(k): [list(p) for p in v] for k, v in auto.outlines_px.items()}
    store.save_finding(cine, f, reviewer="Ana Sono", kind="automatic")
    mine = {}
    for m in auto.measurements:
        mine[m.role] = store.add_measurement(cine, dataclasses.replace(m, reviewer="Ana Sono"), reviewer="Ana Sono")
    con = mine[LABEL_CONTRACTION].measurement
    dragged = con.moved(cine.calibration_for(con.frame_index), p1=(con.x1 - 4.0, con.y1))
    store.update_measurement(dragged, expected_version=1, reviewer="Ana Sono")
    second = make_measurement(cine.calibration_for(con.frame_index), con.frame_index, (con.x1 + 1, con.y1 + 12),
                              (con.x2 - 1, con.y2 + 12), role=LABEL_CONTRACTION, reviewer="Dr Bo")
    store.add_measurement(cine, second, reviewer="Dr Bo")
    yield cine, store, dragged, second
    store.close()
    cine.close()


def _same_values_everywhere(cine, data, png):
    f = data.finding
    j = to_json_dict(data)
    rows = list(csv.DictReader(io.StringIO(csv_text(data))))
    (fr,) = [r for r in rows if r["record"] == "finding"]
    used = [m for m in j["measurements"] if m["read"] == "finding"]
    assert {m["role"] for m in used} == {LABEL_REST, LABEL_CONTRACTION}
    by_role = {m["role"]: m["length_mm"] for m in used}
    assert j["finding"]["gap_rest_mm"] == pytest.approx(by_role[LABEL_REST])
    assert j["finding"]["gap_contraction_mm"] == pytest.approx(by_role[LABEL_CONTRACTION])
    assert float(fr["gap_contraction_mm"]) == pytest.approx(by_role[LABEL_CONTRACTION])
    assert [m["read"] for m in j["measurements"] if m["reviewer"] == "Dr Bo"] == ["second read"]
    (text,) = pdf_pages(pdf_bytes(cine, data), png)
    flat = " ".join(text.split())
    assert " ".join(headline(f).split()) in flat
    for v in (f["gap_rest_mm"], f["gap_contraction_mm"]):
        assert flat.count(f"{v:.2f} mm") >= 3  # headline, value table, the finding's caliper row
    assert f"{f['retraction_mm']:+.2f} mm" in flat
    assert "US region #1" in flat and "#0" not in flat
    assert "second read" in flat and "Dr Bo" in flat
    import highdicom as hd

    sr = build_sr(data, PHANTOM)
    buf = io.BytesIO()
    sr.save_as(buf, enforce_file_format=True)
    back = hd.sr.srread(io.BytesIO(buf.getvalue()))  # read back as a PACS would
    values = {}
    for g in back.content.get_image_measurement_groups():
        for n in g.get_measurements():
            values.setdefault(n.name.meaning, float(n.value))
    assert values["Muscle gap at rest"] == pytest.approx(f["gap_rest_mm"], abs=1e-6)
    assert values["Muscle gap at contraction"] == pytest.approx(f["gap_contraction_mm"], abs=1e-6)
    assert values["Gap retraction on contraction"] == pytest.approx(f["retraction_mm"], abs=1e-6)
    return flat, sr


def test_draft_is_preliminary_and_unverified(walk):
    cine, store, dragged, _ = walk
    data = gather(cine, store, analyze=False)
    assert data.finding["status"] == "draft" and data.finding["gap_contraction_mm"] == pytest.approx(dragged.length_mm)
    flat, sr = _same_values_everywhere(cine, data, None)
    assert "DRAFT — not signed" in flat
    assert (sr.VerificationFlag, sr.PreliminaryFlag, sr.CompletionFlag) == ("UNVERIFIED", "PRELIMINARY", "PARTIAL")


def test_signed_report_names_the_signer_and_sr_is_verified(walk):
    cine, store, dragged, _ = walk
    f = store.latest_finding(cine)
    store.finalize_finding(f.id, expected_version=f.version, reviewer="Dr Bo")
    data = gather(cine, store, analyze=False)
    flat, sr = _same_values_everywhere(cine, data, ART / "signed.png")
    assert re.search(r"FINAL \(signed by Dr Bo, \d{4}-\d\d-\d\d \d\d:\d\d UTC\)", flat)
    assert (sr.VerificationFlag, sr.PreliminaryFlag, sr.CompletionFlag) == ("VERIFIED", "FINAL", "COMPLETE")
    (obs,) = sr.VerifyingObserverSequence
    assert str(obs.VerifyingObserverName) == "Dr Bo^"
    assert str(obs.VerificationDateTime).startswith(data.finding["signed_at"][:10].replace("-", ""))
    assert sr.SOPInstanceUID == sr_uids(data.loop_key, data.finding)[1] == build_sr(data, PHANTOM).SOPInstanceUID


def test_amended_report_and_sr_reference_the_signed_version(walk, tmp_path):
    cine, store, dragged, _ = walk
    v1 = store.latest_finding(cine)
    v1_sr = build_sr(gather(cine, store, analyze=False), PHANTOM)
    v2 = store.amend_finding(v1.id, reason="contraction end on the last intact fibre", expected_version=v1.version,
                             reviewer="Ana Sono")
    cur = next(s for s in store.measurements(cine, reviewer="Ana Sono") if s.id == dragged.id)
    again = cur.measurement.moved(cine.calibration_for(dragged.frame_index), p1=(dragged.x1 + 2.0, dragged.y1))
    store.update_measurement(again, expected_version=cur.version, reviewer="Ana Sono")
    v2 = store.latest_finding(cine)
    store.finalize_finding(v2.id, expected_version=v2.version, reviewer="Dr Bo")
    data = gather(cine, store, analyze=False)
    assert data.finding["status"] == "amended" and data.finding["gap_contraction_mm"] == pytest.approx(again.length_mm)
    flat, sr = _same_values_everywhere(cine, data, ART / "amended.png")
    assert "AMENDED (signed by Dr Bo" in flat and "amends version 1" in flat
    assert "reason: contraction end on the last intact fibre" in flat and "version 1: final, signed by Dr Bo" in flat
    assert sr.VerificationFlag == "VERIFIED" and sr.SOPInstanceUID != v1_sr.SOPInstanceUID
    (pre,) = sr.PredecessorDocumentsSequence
    ref = pre.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert ref.ReferencedSOPInstanceUID == v1_sr.SOPInstanceUID and pre.StudyInstanceUID == v1_sr.StudyInstanceUID
    out = tmp_path / "amended_sr.dcm"
    sr.save_as(out, enforce_file_format=True)
    back = pydicom.dcmread(out)
    assert back.VerificationFlag == "VERIFIED" and back.InstanceNumber == 2
    doc = json.loads(json.dumps(to_json_dict(data)))
    assert [v["id"] for v in doc["finding"]["history"]] == [v1.id] and doc["finding"]["supersedes"] == v1.id


def test_key_frame_labels_never_overlap_and_colour_per_reviewer():
    from msus.export import from_cine
    from msus.export.overlay import REVIEWER_PALETTE, _free_spot, key_frame, reviewer_colours

    boxes = [(100, 100, 80, 4)]  # a caliper line
    placed = [_free_spot(boxes, 140, 102, 90, 20, 400, 300) for _ in range(6)]  # six labels at one spot
    labels = boxes[1:]
    assert len(placed) == len(labels) == 6
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not (a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]), (a, b)
    cine = load(PHANTOM)
    try:
        cal = cine.calibration_for(5)
        ms = tuple(make_measurement(cal, 5, (150, 120 + k), (190, 120 + k), role=LABEL_REST, reviewer=who)
                   for k, who in enumerate(("Ana", "Bo", "Cy")))
        data = from_cine(cine, measurements=ms, finding={"reviewer": "Ana", "classification": "partial", "status": "draft"})
        assert list(reviewer_colours(data).values()) == list(REVIEWER_PALETTE[:3])
        img = key_frame(cine.frame(5), 5, data)
        for c in REVIEWER_PALETTE[:3]:
            assert (img.reshape(-1, 3) == c).all(axis=1).any()  # each reviewer's colour is drawn
        assert [r for _, _, r in data.caliper_reads()] == ["finding", "second read", "second read"]
    finally:
        cine.close()
