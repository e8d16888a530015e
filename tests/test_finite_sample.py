"""The finite-sample study (stefast finite-sample) and its statistics."""

import math

import numpy as np
import pytest
from scipy import stats

from stefast.cli import main
from stefast.experiments import finite_sample as fs


def test_wilson_interval_against_its_definition():
    # the interval's ends are the two roots in p of (phat - p)^2 = z^2 p (1 - p) / n
    z = stats.norm.ppf(0.975)
    for k, n in [(0, 10), (3, 10), (10, 10), (57, 200)]:
        lo, hi = fs.wilson_interval(k, n)
        phat = k / n
        for p in (lo, hi):
            if 0 < p < 1:
                assert (phat - p) ** 2 == pytest.approx(z * z * p * (1 - p) / n, rel=1e-9)
        assert lo <= phat <= hi
    assert fs.wilson_interval(0, 0) == (0.0, 1.0)


def test_count_excursions_by_hand():
    assert fs.count_excursions([1.0, 0.5, 0.1, 0.05]) == 0       # arrives, stays
    assert fs.count_excursions([0.1, 0.5, 0.1]) == 1              # leaves and returns
    assert fs.count_excursions([0.1, 0.3, 0.1]) == 0              # not far enough
    assert fs.count_excursions([0.1, 0.5, 0.6]) == 0              # leaves for good
    assert fs.count_excursions([0.1, 0.5, 0.1, 0.9, 0.01]) == 2
    assert fs.count_excursions([0.5, 0.1, 0.5, math.nan, 0.1]) == 0  # NaN ends the curve


def test_quick_study_writes_its_report(tmp_path, capsys):
    assert main(["finite-sample", "--quick", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "finite_sample.md").read_text()
    for part in ("Success versus N / n", "Label noise", "Remark 1"):
        assert part in text
    for png in ("success_vs_samples.png", "generalisation_gap.png", "label_noise.png"):
        assert (tmp_path / png).stat().st_size > 0
    assert "P(global)" in capsys.readouterr().out


def test_study_tables_are_the_ensembles():
    st = fs.compute("quick", seed=3)
    tables = fs.summarise(st)
    for row in tables["success"]:
        res = st.success[row["ste"], row["N/n"]]
        assert row["P(global)"] == np.mean(res.status == "global")
        assert row["runs"] == len(res) == fs.SETTINGS["quick"]["runs"]
    # seeded: the same tables again
    again = fs.summarise(fs.compute("quick", seed=3))
    assert again["success"] == tables["success"]
