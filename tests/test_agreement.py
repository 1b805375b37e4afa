"""Rater agreement: Bland–Altman and ICC against published values."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from msus.agreement import icc, rater_agreement
from msus.calibration import Calibration
from msus.measure import LABEL_CONTRACTION, LABEL_REST, make_measurement

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.
SHROUT_FLEISS = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]


def test_icc_matches_shrout_fleiss():
    i2, i3 = icc(SHROUT_FLEISS)
    assert i2 == pytest.approx(0.29, abs=0.005)
    assert i3 == pytest.approx(0.71, abs=0.005)


def test_icc_perfect_and_degenerate():
    x = np.array([[1.0, 1.0], [2.0, 2.0], [5.0, 5.0]])
    assert icc(x)[0] == pytest.approx(1.0)
    assert icc([[1.0, 2.0]]) == (None, None)  # one item
    assert icc([[1.0, np.nan], [2.0, 2.0]]) == (None, None)




def test_bland_altman_and_differences_from_measurements():
    cal = Calibration.manual(0.1)
    truth = {"a": 10.0, "b": 20.0, "c": 35.0, "d": 42.0}  # px
    ms = []
    for label, px in truth.items():
        ms.append(make_measurement(cal, 0, (0, 0), (px, 0), label=label, reviewer="A"))
        ms.append(make_measurement(cal, 0, (0, 0), (px + 2, 0), label=label, reviewer="B"))  # +0.2 mm
    ms.append(make_measurement(Calibration.none(), 0, (0, 0), (5, 0), label="e", reviewer="B"))
    ag = rater_agreement(ms)
    assert ag.raters == ("A", "B") and len(ag.items) == 4
    (ba,) = ag.bland_altman
    assert ba.bias_mm == pytest.approx(0.2) and ba.sd_mm == pytest.approx(0.0, abs=1e-9)
    assert ba.loa_low_mm == pytest.approx(0.2) and ba.loa_high_mm == pytest.approx(0.2)
    assert [d.difference_mm for d in ag.differences] == pytest.approx([0.2] * 4)
    assert ag.icc_2_1 is not None and 0.9 < ag.icc_2_1 < 1.0  # systematic offset lowers absolute agreement
    assert ag.icc_3_1 == pytest.approx(1.0)
    assert any("uncalibrated" in n for n in ag.notes)
    assert ag.to_dict()["bland_altman"][0]["bias_mm"] == pytest.approx(0.2)


def test_latest_caliper_per_reviewer_counts_and_single_reviewer_notes():
    cal = Calibration.manual(0.5)
    old = make_measurement(cal, 1, (0, 0), (10, 0), label=LABEL_REST, reviewer="A")
    new = make_measurement(cal, 1, (0, 0), (12, 0), label=LABEL_REST, reviewer="A")
    b = make_measurement(cal, 1, (0, 0), (11, 0), label=LABEL_REST, reviewer="B")
    c = make_measurement(cal, 2, (0, 0), (30, 0), label=LABEL_CONTRACTION, reviewer="A")
    ag = rater_agreement([old, new, b, c])
    assert ag.items == (LABEL_REST,)  # contraction measured by one reviewer only
    assert ag.values_mm == ((6.0, 5.5),)
    assert ag.icc_2_1 is None and ag.n_complete_items == 1
    assert rater_agreement([c]).notes


def test_items_of_one_stored_loop_are_named_by_label(tmp_path):
    """In the app's panel (one loop), items read "gap at rest", not a UID prefix."""
    from types import SimpleNamespace

    from msus.calibration import Calibration
    from msus.measure import LABEL_REST, make_measurement

    cal = Calibration.manual(0.1)
    ms = [SimpleNamespace(loop_key="1.2.840.99999.1.2.3.4.5.6.7", measurement=dataclasses.replace(
        make_measurement(cal, 0, (0, 0), (n, 0), role=LABEL_REST), reviewer=who)) for who, n in (("A", 50), ("B", 52))]
    assert rater_agreement(ms).items == (LABEL_REST,)
    two = ms + [SimpleNamespace(loop_key="other-loop", measurement=m.measurement) for m in ms]
    assert all("…" in it for it in rater_agreement(two).items)  # several loops: the loop tells items apart
