"""The stefast command line, run in-process."""

import json

import pytest

from stefast.cli import main


def test_reproduce_quick(tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["reproduce", "--out", str(out), "--quick"]) == 0
    for name in ("report.md", "figure1.png", "trajectories.png", "sampled_vs_population.png"):
        assert (out / name).stat().st_size > 0, name
    text = (out / "report.md").read_text()
    assert "Theorem 1" in text and "Figure 1" in text and "STE report" in text
    assert "claim" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["analytic", "--m", "5", "--n", "4", "--json"],
    ["landscape", "--m", "4", "--n", "3", "--points", "5", "--json"],
    ["train", "--m", "4", "--n", "3", "--steps", "50", "--json"],
    ["train", "--steps", "20", "--mode", "sampled", "--batch-size", "50", "--json"],
    ["mc", "--m", "4", "--n", "3", "--samples", "2000", "--ste", "relu", "--json"],
])
def test_json_subcommands(argv, capsys):
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert isinstance(data, dict)


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
