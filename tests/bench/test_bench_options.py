"""``python -m bench``: names, options and ``--help`` (nothing is benchmarked here)."""

from __future__ import annotations

import pytest

from bench.__main__ import available
from bench.__main__ import main as bench_main


@pytest.mark.parametrize("name", available())
def test_help_prints_the_benchmarks_usage_and_runs_nothing(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        bench_main([name, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: python -m bench {name}" in out
    assert "== bench" in out and out.count("\n") > 2  # the module's description follows the usage line


@pytest.mark.parametrize("name", available())
def test_an_unknown_option_is_an_error_not_a_run_on_defaults(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        bench_main([name, "--no-such-option"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["quality", "--sets", "banking77,nope"], ["quality", "--sizes", "3k"],
                                  ["journeys", "--sets", "hwu64"], ["journeys_sgd_pipeline", "--batch-size"]])
def test_bad_option_values_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        bench_main(argv)
    assert exit_.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_names_and_options(capsys):
    assert bench_main(["no_such_bench"]) == 2
    assert "unknown benchmark no_such_bench" in capsys.readouterr().err
    assert bench_main(["topics", "themes", "--skip-scale"]) == 2  # options go to one benchmark
    assert "options go to one benchmark" in capsys.readouterr().err


def test_good_options_reach_the_benchmark(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TURRET_SHARED_DATA", str(tmp_path / "absent"))
    assert bench_main(["quality", "--sets", "hwu64,sgd_dev", "--sizes", "1000,all", "--skip-bertopic"]) == 0
    assert "not found" in capsys.readouterr().out  # parsed, then the data check: nothing to benchmark


def test_journeys_sgd_hands_the_rest_to_the_pipeline_benchmark(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TURRET_SHARED_DATA", str(tmp_path / "absent"))
    assert bench_main(["journeys_sgd", "--pipeline", "--batch-size", "100"]) == 0
    assert "journeys_sgd_pipeline:" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        bench_main(["journeys_sgd", "--batch-size", "100"])  # a pipeline option without --pipeline
    assert exit_.value.code == 2
