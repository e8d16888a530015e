"""The stefast command line, run in-process."""

import json

import numpy as np
import pytest

import stefast

from stefast.cli import main


def test_reproduce_quick(tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["reproduce", "--out", str(out), "--quick"]) == 0
    for name in ("report.md", "figure1.png", "trajectories.png", "sampled_vs_population.png"):
        assert (out / name).stat().st_size > 0, name
    text = (out / "report.md").read_text()
    assert "Theorem 1" in text and "Figure 1" in text and "STE report" in text
    assert "claim" in capsys.readouterr().out


def _json(argv, capsys):
    assert main(argv + ["--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_analytic_is_the_library_at_the_printed_point(capsys):
    data = _json(["analytic", "--m", "5", "--n", "4", "--ste", "relu", "--ste", "identity"],
                 capsys)
    v, w, vs, ws = (np.array(data[k]) for k in ("v", "w", "v_star", "w_star"))
    assert v.shape == (5,) and w.shape == (4,)
    assert data["point"]["f"] == stefast.population_loss(v, w, vs, ws)
    assert data["point"]["theta"] == stefast.angle(w, ws)
    assert [r["ste"] for r in data["stes"]] == ["relu", "identity"]
    for row in data["stes"]:
        g = stefast.expected_coarse_grad(v, w, vs, ws, row["ste"]).grad_w
        assert row["|E[g]|"] == pytest.approx(float(np.linalg.norm(g)), rel=1e-14)


def test_json_landscape_rows(capsys):
    data = _json(["landscape", "--m", "4", "--n", "3", "--points", "5"], capsys)
    thetas = [r["theta"] for r in data["rows"]]
    np.testing.assert_allclose(thetas, np.linspace(0, np.pi, 5))
    f = [r["f_min_over_v"] for r in data["rows"]]
    assert f[0] == pytest.approx(0.0, abs=1e-12)  # the global minimum at theta = 0
    assert all(-1 <= r[f"cos[{s}]"] <= 1 for r in data["rows"] for s in ("relu", "identity"))


@pytest.mark.parametrize("mode", ["population", "sampled"])
def test_json_train_runs_the_steps_asked_for(mode, capsys):
    data = _json(["train", "--m", "4", "--n", "3", "--steps", "40", "--mode", mode,
                  "--batch-size", "50"], capsys)
    assert data["summary"]["steps"] == 40
    assert data["trajectory"]["step"] == list(range(41))
    assert data["summary"]["f_final"] == data["trajectory"]["f"][-1]
    assert len(data["v_final"]) == 4 and len(data["w_final"]) == 3


def test_json_mc_agrees_with_the_closed_form(capsys):
    data = _json(["mc", "--m", "4", "--n", "3", "--samples", "20000", "--ste", "relu"], capsys)
    assert {(r["method"], r["quantity"]) for r in data["rows"]} == {
        (mth, q) for mth in ("full", "conditional") for q in ("loss", "grad_v", "grad_w")}
    assert all(r["z"] < 6 for r in data["rows"])  # within 6 standard errors


@pytest.mark.parametrize("argv", [
    ["analytic"], ["landscape", "--points", "3"], ["train", "--steps", "10", "--init", "spurious"],
])
def test_table_output(argv, capsys):
    assert main(argv) == 0
    assert "---" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    [], ["nope"], ["analytic", "--m", "0"], ["analytic", "--n", "x"], ["train", "--lr", "-1"],
    ["analytic", "--ste", "bogus"], ["train", "--ste", "bogus"], ["mc", "--method", "nope"],
])
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert "reproduce" in capsys.readouterr().out
    assert main(["reproduce", "--help"]) == 0


# --------------------------------------------------------------------------
# stefast sweep
# --------------------------------------------------------------------------

SWEEP_SPEC = """
quantity = "monte_carlo"
seed = 5
[grid]
theta = [0.5, 2.0]
ste = ["relu", "identity"]
[fixed]
m = 3
n = 4
n_samples = 3000
"""


def _spec(tmp_path, text=SWEEP_SPEC):
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return str(path)


def test_sweep_writes_the_library_table(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", _spec(tmp_path), "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    # stderr is not a terminal here: a progress line at the start and per point
    assert captured.err.splitlines() == [f"sweep: {k}/4 points" for k in range(5)]
    want = stefast.sweep("monte_carlo", {"theta": [0.5, 2.0], "ste": ["relu", "identity"]},
                         fixed={"m": 3, "n": 4, "n_samples": 3000}, seed=5)
    assert data["rows"] == [dict(r) for r in want.rows]
    assert (out / "sweep.csv").read_text() == want.to_csv(tmp_path / "want.csv").read_text()
    assert (out / "sweep.png").stat().st_size > 0  # a 2-D grid gets a figure
    assert len(list((out / "points").glob("*.json"))) == 4
    # run again: every point is read back, the table is the same
    assert main(["sweep", _spec(tmp_path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "4 points (4 read from" in text


@pytest.mark.parametrize("text, match", [
    ("quantity = 'nope'\n[grid]\nm = [1]\n", "quantity must be one of"),
    ("quantity = 'closed_form'\n", r"needs a \[grid\] table"),
    ("quantity = 'closed_form'\nbogus = 1\n[grid]\nm = [1]\n", r"unknown key\(s\) \['bogus'\]"),
    ("quantity = 'closed_form'\n[grid\n", "is not valid TOML"),
    ("quantity = 'closed_form'\n[grid]\ntheta = [1.0]\n[fixed]\nm = 2\n", r"needs parameter\(s\)"),
    ("quantity = 'closed_form'\nseed = -1\n[grid]\nm = [2]\n[fixed]\nn = 3\n", "seed must be"),
])
def test_sweep_bad_spec_exits_2(tmp_path, capsys, text, match):
    assert main(["sweep", _spec(tmp_path, text), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stefast: error: ") and "Traceback" not in err
    assert __import__("re").search(match, err), err


@pytest.mark.parametrize("argv, match", [
    (["--workers", "0"], "argument --workers"),
    (["--workers", "2", "--scheduler", "tcp://x:1"], "not allowed with argument"),
    ([], "the following arguments are required: --out"),
])
def test_sweep_usage_errors_name_the_option(tmp_path, capsys, argv, match):
    out = [] if not argv else ["--out", str(tmp_path / "o")]
    assert main(["sweep", _spec(tmp_path)] + out + argv) == 2
    assert match in capsys.readouterr().err


def test_sweep_unreachable_scheduler_exits_2(tmp_path, capsys):
    pytest.importorskip("distributed")
    # a port nothing listens on: connection refused, reported in one line
    assert main(["sweep", _spec(tmp_path), "--out", str(tmp_path / "o"),
                 "--scheduler", "tcp://127.0.0.1:9", "--timeout", "2"]) == 2
    err = capsys.readouterr().err
    assert "--scheduler 'tcp://127.0.0.1:9': cannot connect" in err


def test_sweep_on_a_scheduler_and_on_workers_gives_the_same_csv(tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    spec = _spec(tmp_path)
    assert main(["sweep", spec, "--out", str(tmp_path / "here")]) == 0
    want = (tmp_path / "here" / "sweep.csv").read_text()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster:
        assert main(["sweep", spec, "--out", str(tmp_path / "sched"),
                     "--scheduler", cluster.scheduler_address]) == 0
    assert main(["sweep", spec, "--out", str(tmp_path / "workers"), "--workers", "1"]) == 0
    assert "Dask scheduler" in capsys.readouterr().err
    assert (tmp_path / "sched" / "sweep.csv").read_text() == want
    assert (tmp_path / "workers" / "sweep.csv").read_text() == want


def test_sweep_failing_point_exits_1_naming_it(tmp_path, capsys):
    # n_samples = 1 passes the spec checks and fails in monte_carlo (it needs 2)
    spec = _spec(tmp_path, SWEEP_SPEC.replace("n_samples = 3000", "n_samples = 1"))
    assert main(["sweep", spec, "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("stefast: error: grid point theta=0.5, ste='relu': ValueError: "
                              "n_samples must be") and err[:-1] == ["sweep: 0/4 points"]


def test_sweep_workers_without_dask_names_the_extra(tmp_path, capsys, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if absent
    assert main(["sweep", _spec(tmp_path), "--out", str(tmp_path / "o"), "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert "--workers needs Dask" in err and "stefast[distributed]" in err
