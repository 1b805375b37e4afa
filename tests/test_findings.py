"""msus.analysis.classify: the tear flag, its reasons, descriptors and the thresholds file."""

import pytest

from msus.errors import AnalysisError
from msus.analysis.classify import DISCLAIMER, classify, load_thresholds


def test_full_thickness_with_retraction():
    f = classify(defect_found=True, thickness_fraction=1.0, gap_rest_mm=5.0, gap_contraction_mm=9.1, contrast=0.6)
    assert f.classification == "suspected_full_thickness" and f.flagged
    assert "defect spans 100 % of the muscle thickness" in f.reasons
    assert "gap widens 4.1 mm on contraction" in f.reasons
    assert f.retraction_mm == pytest.approx(4.1)
    assert f.peetrons.startswith("Peetrons 3") and "retraction" in f.peetrons
    assert f.bamic.startswith("BAMIC 4")
    assert f.disclaimer == DISCLAIMER == "flag for review, not a diagnosis"


def test_partial_and_retraction_support():
    f = classify(defect_found=True, thickness_fraction=0.5, gap_rest_mm=6.0, gap_contraction_mm=6.1)
    assert f.classification == "partial"
    assert any("no retraction" in r for r in f.reasons)
    assert f.peetrons.startswith("Peetrons 2") and f.bamic is None
    # most of the thickness plus clear retraction: the ends are free
    f = classify(defect_found=True, thickness_fraction=0.8, gap_rest_mm=4.0, gap_contraction_mm=7.0)
    assert f.classification == "suspected_full_thickness"
    f = classify(defect_found=True, thickness_fraction=0.8, gap_rest_mm=4.0, gap_contraction_mm=4.5)
    assert f.classification == "partial"


def test_uncalibrated_uses_px():
    f = classify(defect_found=True, thickness_fraction=0.8, gap_rest_px=40, gap_contraction_px=80)
    assert f.classification == "suspected_full_thickness"
    assert f.retraction_mm is None and f.retraction_px == 40
    assert any("px" in r for r in f.reasons)


def test_no_defect():
    f = classify(defect_found=False, thickness_fraction=0.0, notes=("nothing dark enough",))
    assert f.classification == "no_defect" and not f.flagged
    assert "nothing dark enough" in f.reasons
    assert f.to_dict()["disclaimer"] == DISCLAIMER


def test_thresholds_file_and_override(tmp_path, monkeypatch):
    th = load_thresholds()
    assert 0 < th["classification"]["full_thickness_fraction"] <= 1
    assert th["defect"]["min_contrast"] > 0
    over = tmp_path / "t.toml"
    over.write_text("[classification]\nfull_thickness_fraction = 0.4\n")
    monkeypatch.setenv("MSUS_THRESHOLDS", str(over))
    th2 = load_thresholds()
    assert th2["classification"]["full_thickness_fraction"] == 0.4
    assert th2["defect"] == th["defect"]  # untouched keys keep their defaults
    f = classify(defect_found=True, thickness_fraction=0.5, gap_rest_mm=6, gap_contraction_mm=7.5)
    assert f.classification == "suspected_full_thickness"


def test_bad_thresholds_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MSUS_THRESHOLDS", str(tmp_path / "missing.toml"))
    with pytest.raises(AnalysisError, match="not found"):
        load_thresholds()
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    monkeypatch.setenv("MSUS_THRESHOLDS", str(bad))
    with pytest.raises(AnalysisError, match="not valid TOML"):
        load_thresholds()


def test_full_needs_the_ends_to_move_apart_when_measured():
    # spans nearly everything but the ends stay put on contraction: fibres still bridge it
    f = classify(defect_found=True, thickness_fraction=0.95, gap_rest_mm=6.0, gap_contraction_mm=6.2)
    assert f.classification == "partial"
    assert any("do not move apart" in r for r in f.reasons)
    # retraction not measurable (one frame only): the thickness fraction decides
    f = classify(defect_found=True, thickness_fraction=0.95)
    assert f.classification == "suspected_full_thickness"
    f = classify(defect_found=True, thickness_fraction=0.95, gap_rest_mm=6.0, gap_contraction_mm=7.2)
    assert f.classification == "suspected_full_thickness"


def test_without_contraction_retraction_is_not_judged():
    f = classify(defect_found=True, thickness_fraction=0.95, gap_rest_mm=6.0, gap_contraction_mm=6.0,
                 contracted=False)
    assert f.classification == "suspected_full_thickness"
    assert any("retraction not assessed" in r for r in f.reasons)
