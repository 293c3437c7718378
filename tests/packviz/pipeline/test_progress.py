"""Progress: a tqdm bar on a terminal, plain lines with throughput and ETA otherwise."""

from __future__ import annotations

from packviz.pipeline import progress
from packviz.pipeline.progress import Progress


def test_plain_lines_carry_counts_rates_and_an_eta(monkeypatch):
    monkeypatch.setattr(progress, "LOG_EVERY", 0.0)
    lines: list[str] = []
    p = Progress("tokenize", 4, "parts", bar=False, log=lines.append)
    p.update(1, tokens=2_000_000)
    p.update(1, tokens=2_000_000)
    p.close()
    assert lines[0] == "tokenize: 4 parts"
    assert lines[1].startswith("tokenize: 1/4 parts (25 %), 2.0M tokens (")
    assert "ETA" in lines[1]
    assert lines[-1].startswith("tokenize: done 2/4 parts, 4.0M tokens (")


def test_a_bar_is_drawn_on_the_terminal(capsys):
    p = Progress("write shards", 3, "shards", bar=True, log=lambda line: None)
    for _ in range(3):
        p.update(1)
    p.close()
    err = capsys.readouterr().err
    assert "write shards" in err and "100%" in err and "3/3" in err
