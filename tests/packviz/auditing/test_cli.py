"""``packviz audit``: a table or JSON lines, and an exit code for CI gates."""

from __future__ import annotations

import json

import numpy as np
import pytest

import packviz as pv
from packviz.cli import COMMANDS, main


@pytest.fixture
def packed(tmp_path):
    rng = np.random.default_rng(0)
    lengths = [6, 9, 1, 4, 10, 11]
    ids = [rng.integers(3, 64, n) for n in lengths]
    a = pv.materialize(pv.pack(lengths, 24, strategy="next_fit", sort="none"), ids, pad_id=0)
    path = tmp_path / "rows.parquet"
    pv.save(a, path)
    return str(path)


def test_registered():
    assert COMMANDS["audit"] == "packviz.auditing.cli"


def test_table_and_require(packed, capsys):
    argv = ["audit", "--model", "gpt2", "--packed", packed, "--paths", "dense_additive,causal"]
    assert main([*argv, "--require", "dense_additive"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["path", "verdict", "max", "|Δ", "logit|", "|Δ", "loss|"]
    assert out[1].split()[:2] == ["dense_additive", "exact"]
    assert out[2].split()[:2] == ["causal", "leaks"]
    assert out[-1].startswith("causal: fix: pass a document mask")
    assert main([*argv, "--require", "dense_additive,causal"]) == 1


def test_json_lines(packed, capsys):
    argv = ["audit", "--model", "mamba2", "--packed", packed, "--rows", "1", "--json"]
    assert main(argv) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["path"] for x in lines][-1] == "seq_idx"
    assert all(x["verdict"] == "leaks" and x["exact"] is False for x in lines)
    flex = ["audit", "--model", "gpt2", "--packed", packed, "--paths", "flex", "--json"]
    assert main(flex) == 0
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert line["exact"] is None and line["max_logit_diff"] is None  # NaN is null in JSON


def test_errors_are_one_line(packed, capsys):
    assert main(["audit", "--model", "llama", "--packed", packed, "--require", "dense"]) == 2
    assert "packviz audit: error: unknown audit path 'dense'" in capsys.readouterr().err
    assert main(["audit", "--model", "llama", "--packed", packed + ".npz"]) == 2
    assert "packviz audit: error:" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["npz", "parquet"])
def test_only_the_audited_rows_are_read(tmp_path, monkeypatch, fmt):
    """The file is scanned window by window for its busiest rows and only those are
    read: it is never loaded whole."""
    from packviz.auditing.cli import audited_rows

    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 40, 300).tolist()
    ids = [rng.integers(3, 64, n) for n in lengths]
    a = pv.materialize(pv.pack(lengths, 64, strategy="next_fit", sort="none"), ids, pad_id=0)
    path = tmp_path / f"rows.{fmt}"
    pv.save(a, path)
    monkeypatch.setattr(pv.export, "load", lambda *args: pytest.fail("loaded whole"))
    monkeypatch.setattr("packviz.auditing.cli._SCAN_ROWS", 7)  # many windows
    got = audited_rows(path, None)
    per_row = np.bincount(pv.pack(lengths, 64, strategy="next_fit", sort="none").row)
    busiest = sorted(np.argsort(-per_row, kind="stable")[:2].tolist())
    assert got.row_index.tolist() == busiest
    np.testing.assert_array_equal(got.input_ids, a.input_ids[busiest])
    assert audited_rows(path, [5, 0]).row_index.tolist() == [5, 0]
    with pytest.raises(ValueError, match=r"rows must be in \[0, "):
        audited_rows(path, [10**6])


@pytest.mark.parametrize(
    ("model", "says"),
    [
        ("bart", "'bart' is an encoder-decoder model; the audit runs decoder-only causal LMs"),
        ("xmod", "a tiny 'xmod' does not run (ValueError: Input language unknown."),
    ],
)
def test_a_model_that_cannot_be_audited_is_one_line_and_exit_2(packed, capsys, model, says):
    assert main(["audit", "--model", model, "--packed", packed]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"packviz audit: error: {says}")
    assert err.count("\n") == 1


def test_gptj_is_audited(packed, capsys):
    argv = ["audit", "--model", "gptj", "--packed", packed, "--paths", "dense_additive,causal"]
    assert main([*argv, "--require", "dense_additive"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [x.split()[:2] for x in out[1:3]] == [["dense_additive", "exact"], ["causal", "leaks"]]
