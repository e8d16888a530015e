"""stefast.benchreport: the report from a small synthetic pytest-benchmark
JSON (no benchmarks are run here), and the CLI handler with --from-json."""

import argparse
import json
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
from stefast import benchreport  # noqa: E402


def _bench(group, impl, median, work, **extra):
    return {"group": group, "name": f"test[{impl}]", "fullname": f"x::test[{impl}]",
            "stats": {"median": median, "q1": 0.9 * median, "q3": 1.1 * median,
                      "min": 0.8 * median, "rounds": 5},
            "extra_info": {"impl": impl, "work": work, "unit": "samples", **extra}}


@pytest.fixture
def synthetic_json(tmp_path):
    g = "loss_and_grads 32x64 float64 1 thread"
    benches = [
        _bench(g, "stefast", 0.01, 1000, bound="read ns/float64", bound_units=2048000,
               m=32, n=64, dtype="float64"),
        _bench(g, "reference", 0.1, 1000, m=32, n=64, dtype="float64"),
        _bench(g, "numba-njit", 0.02, 1000, m=32, n=64, dtype="float64"),
        _bench("g2", "stefast", 0.001, 1000, m=8, n=16, dtype="float64"),
        _bench("threads", "stefast 1 thread(s)", 0.02, 1000, threads=1, study="threads",
               kernel="loss_and_grads"),
        _bench("threads", "stefast 2 thread(s)", 0.011, 1000, threads=2, study="threads",
               kernel="loss_and_grads"),
        {"group": "interleaved: x", "name": "t", "stats": {"median": 1.0},
         "extra_info": {"work": 100, "unit": "elements", "interleaved": {
             "stefast": {"median": 0.001, "q1": 0.0009, "q3": 0.0011, "rounds": 9},
             "reference": {"median": 0.004, "q1": 0.003, "q3": 0.005, "rounds": 9}}}},
        {"group": "interleaved: y", "name": "f", "stats": {"median": 1.0},
         "extra_info": {"work": 10, "unit": "samples", "interleaved": {
             "stefast": {"median": 0.002, "q1": 0.0019, "q3": 0.0021, "rounds": 10},
             "C read": {"median": 0.0016, "q1": 0.0015, "q3": 0.0017, "rounds": 10}},
             "fraction_of_read": {"read": "C read", "median": 0.8,
                                  "per_copy": [0.75, 0.8, 0.83]}}},
        {"group": "smoke", "name": "disabled", "stats": None, "extra_info": {}},
        _bench("tta", "reference", 1.0, 1000, **{"seconds_to_se_1e-3": 5000.0}),
        _bench("tta", "stefast-conditional", 0.1, 1000, **{"seconds_to_se_1e-3": 2.5}),
    ]
    data = {"machine_info": {"cpu": {"brand_raw": "Test CPU"}},
            "commit_info": {"id": "abc", "dirty": False},
            "benchmarks": benches,
            "stefast": {"bounds": {"read ns/float64": 2e-9}}}
    path = tmp_path / "in.json"
    path.write_text(json.dumps(data))
    return path


def test_report_from_json(tmp_path, synthetic_json):
    out = tmp_path / "report"
    assert benchreport.run_bench(out, from_json=synthetic_json) == 0
    md = (out / "bench.md").read_text()
    for png in ("throughput_vs_mn.png", "threads.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "bench.json").read_text())["benchmarks"]
    assert "## Machine" in md and "### loss_and_grads 32x64 float64 1 thread" in md
    # stefast: 100k samples/s, 10x the reference, 2x numba, 2e-9*2048000/0.01 = 41% of bound
    assert "| stefast | 100k | 90.9k-111k | 10.00x | numba-njit 2.00x | 41% |" in md
    assert "| reference | 10k |" in md and "| numba-njit | 50k |" in md
    assert "## Interleaved groups" in md and "| reference | 25k |" in md
    assert "stefast at 80% of the read (C read), median over 3 copies of the input (75%-83%)." in md
    assert "read ns/float64 | 2.000" in md
    # time-to-accuracy groups get their own table of estimated seconds
    assert "| stefast-conditional | 2.5 | 2000x |" in md


def test_cli_handler_from_json(tmp_path, synthetic_json):
    parser = argparse.ArgumentParser(prog="stefast")
    sub = parser.add_subparsers(dest="command")
    benchreport.add_bench_parser(sub)
    args = parser.parse_args(["bench", "--out", str(tmp_path / "r"), "--from-json",
                              str(synthetic_json)])
    assert args.func(args) == 0
    assert (tmp_path / "r" / "bench.md").is_file()


def test_missing_json_is_an_error(tmp_path, capsys):
    assert benchreport.run_bench(tmp_path, from_json=tmp_path / "nope.json") == 2
    assert "does not exist" in capsys.readouterr().err


def test_machine_info_has_versions():
    info = benchreport.machine_info()
    assert "numpy" in info["versions"] and "thread env" in info


def test_saved_machine_block_is_rendered(tmp_path, synthetic_json):
    """The performance page renders a saved JSON: the machine block and the
    run's date come from the JSON, not from the machine rendering it."""
    data = json.loads(synthetic_json.read_text())
    data["datetime"] = "2026-01-02T03:04:05"
    data["stefast"]["machine"] = {"cpu": "Saved CPU", "cores (os.cpu_count)": 64}
    synthetic_json.write_text(json.dumps(data))
    md = benchreport.render_saved(synthetic_json)
    assert "run: 2026-01-02T03:04:05" in md
    assert "cpu: Saved CPU" in md and "cores (os.cpu_count): 64" in md
    assert "commit: abc dirty=False" in md
    del data["stefast"]["machine"]
    synthetic_json.write_text(json.dumps(data))
    assert "no machine block saved with this JSON" in benchreport.render_saved(synthetic_json)


def test_missing_extra_is_one_line_naming_it(monkeypatch, tmp_path, capsys):
    real = benchreport.importlib.util.find_spec
    monkeypatch.setattr(benchreport.importlib.util, "find_spec",
                        lambda name: None if name == "pytest_benchmark" else real(name))
    assert benchreport.run_bench(tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "pytest-benchmark" in err and 'pip install "stefast[bench]"' in err
    assert not (tmp_path / "out").exists()


def test_bench_suite_is_found():
    """The suite is found without a STEFAST_BENCH_DIR: installed with the
    package (stefast/_bench) or, in a source tree, bench/."""
    found = benchreport.find_bench_dir()
    assert found is not None and (found / "conftest.py").is_file()
    assert (found / "read_bound.c").is_file()


def test_relative_out_dir_survives_the_suites_working_directory(tmp_path, monkeypatch,
                                                                synthetic_json):
    """pytest runs inside the suite's directory, so a relative --out must be
    resolved against the caller's working directory first."""
    seen = {}

    def fake_run(bench_dir, json_path, quick=False):
        seen["json_path"] = json_path
        Path(json_path).write_text(synthetic_json.read_text())
        return 0

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(benchreport, "run_pytest", fake_run)
    assert benchreport.run_bench("rel/out", quick=True) == 0
    assert Path(seen["json_path"]).is_absolute()
    assert (tmp_path / "rel" / "out" / "bench.md").is_file()
    saved = json.loads((tmp_path / "rel" / "out" / "bench.json").read_text())
    assert saved["stefast"]["machine"]["versions"]["numpy"] != "not installed"
