"""The Export view shows the `packviz pack` command for the current settings and corpus,
and that command, run on the same file, packs it exactly as the dashboard did."""

from __future__ import annotations

import json
import shlex

from apptest import app, errors
from corpus_files import documents

from packviz.cli import main

TEXT = "\n\n".join(documents(70, seed=5))


def _command(at) -> str:
    (command,) = [c.value for c in at.code if c.value.startswith("packviz pack")]
    return command


def test_the_command_reproduces_the_dashboards_plan_on_the_full_files(tmp_path):
    at = app(corpus_source="Upload", max_len=128, vocab_size=512, sort="asc").run()
    at.file_uploader(key="corpus_files").upload("notes.txt", TEXT.encode(), "text/plain").run()
    at.switch_page("pages/export.py").run()
    assert not at.exception, at.exception
    assert not errors(at)
    command = _command(at)
    assert command == (
        "packviz pack notes.txt --out packed --max-len 128 --strategy best_fit --sort asc "
        "--overflow split --train-vocab 512 --format npz"
    )
    shown = json.loads(at.expander[0].code[0].value)

    (tmp_path / "notes.txt").write_text(TEXT)
    argv = shlex.split(command)[1:]
    argv[argv.index("notes.txt")] = str(tmp_path / "notes.txt")
    argv[argv.index("packed")] = str(tmp_path / "packed")
    assert main([*argv, "--workers", "1"]) == 0
    manifest = json.loads((tmp_path / "packed" / "manifest.json").read_text())
    assert manifest["stats"] == shown["statistics"]
    assert manifest["tokenizer"]["fingerprint"] == shown["tokenizer_fingerprint"]
    assert manifest["pad_id"] == shown["pad_id"]


def test_a_built_in_corpus_gets_a_placeholder_for_the_files():
    at = app(max_len=4096, strategy="wrapped", sort="random", seed=7).run()
    at.switch_page("pages/export.py").run()
    assert not at.exception, at.exception
    assert _command(at) == (
        "packviz pack corpus/ --out packed --max-len 4096 --strategy wrapped --sort random "
        "--overflow split --seed 7 --train-vocab 4096 --format npz"
    )
