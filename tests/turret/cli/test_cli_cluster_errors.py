"""`turret cluster` mistakes: each is one line on stderr, found before any clustering, and creates nothing."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from turret.cli.cluster import cluster


@pytest.fixture
def texts(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("id,prompt\n1,How do I reset my password?\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("output", "words"), [
    ("missing/dir/x.csv", "the folder {tmp}/missing/dir does not exist"),
    ("out.parquet", "the output must end in .csv or .jsonl"),
], ids=["missing-folder", "bad-suffix"])
def test_bad_output_is_one_line_and_creates_nothing(tmp_path, texts, output, words):
    result = CliRunner().invoke(cluster, [str(texts), "--field", "prompt", "-o", str(tmp_path / output)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert words.format(tmp=tmp_path) in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


@pytest.mark.parametrize(("args", "words"), [
    (["nowhere.csv", "--field", "prompt"], "does not exist"),
    (["{texts}", "--field", "query"], "unknown field 'query': in.csv has id, prompt"),
], ids=["missing-input", "unknown-field"])
def test_bad_input_is_one_line(tmp_path, texts, args, words):
    args = [a.format(texts=texts) for a in args]
    result = CliRunner().invoke(cluster, [*args, "-o", str(tmp_path / "out.csv")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and words in lines[0]
    assert not (tmp_path / "out.csv").exists()
