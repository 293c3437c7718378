"""The Export view shows the `packviz pack` command for the current settings and corpus,
and that command, run on the same file, packs it exactly as the dashboard did."""

from __future__ import annotations

import json
import shlex

from apptest import app, errors
from corpus_files import documents, tokenizer_file

from packviz.cli import main

TEXT = "\n\n".join(documents(70, seed=5))


def _command(at) -> str:
    (command,) = [c.value for c in at.code if c.value.startswith("packviz pack")]
    return command


def _export(at) -> tuple[str, dict]:
    """The Export view's `packviz pack` command and the metadata it shows."""
    at.switch_page("pages/export.py").run()
    assert not at.exception, at.exception
    assert not errors(at)
    return _command(at), json.loads(at.expander[0].code[0].value)


def _run(command: str, tmp_path, paths: dict) -> dict:
    """Run the shown command (its placeholder names replaced by ``paths``, the output in
    ``tmp_path/packed``) through the console script's entry point; its manifest."""
    argv = shlex.split(command)[1:]
    for name, path in {**paths, "packed": tmp_path / "packed"}.items():
        argv[argv.index(name)] = str(path)
    assert main([*argv, "--workers", "1"]) == 0
    return json.loads((tmp_path / "packed" / "manifest.json").read_text())


def test_the_command_reproduces_the_dashboards_plan_on_the_full_files(tmp_path):
    at = app(corpus_source="Upload", max_len=128, vocab_size=512, sort="asc").run()
    at.file_uploader(key="corpus_files").upload("notes.txt", TEXT.encode(), "text/plain").run()
    command, shown = _export(at)
    assert command == (
        "packviz pack notes.txt --out packed --max-len 128 --strategy best_fit --sort asc "
        "--overflow split --train-vocab 512 --format npz"
    )

    (tmp_path / "notes.txt").write_text(TEXT)
    manifest = _run(command, tmp_path, {"notes.txt": tmp_path / "notes.txt"})
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


def _chats(n: int) -> list[dict]:
    words = documents(2 * n, seed=8)
    return [
        {
            "messages": [
                {"role": "user", "content": words[2 * i]},
                {"role": "assistant", "content": words[2 * i + 1]},
            ]
        }  # fmt: skip
        for i in range(n)
    ]


def test_records_name_the_model_tokenizer_train_on_and_template_and_pack_the_same(tmp_path):
    chats = "\n".join(json.dumps(c) for c in _chats(40)).encode()
    tok = tokenizer_file(tmp_path)
    at = app(corpus_source="Upload", tokenizer_source="Upload tokenizer.json", max_len=256,
             train_on="assistant").run()  # fmt: skip
    at.file_uploader(key="tokenizer_file").upload(
        "tokenizer.json", tok.read_bytes(), "application/json"
    ).run()
    at.file_uploader(key="corpus_files").upload("chats.jsonl", chats, "application/json").run()
    command, shown = _export(at)
    assert command == (
        "packviz pack chats.jsonl --out packed --max-len 256 --strategy best_fit --sort desc "
        "--overflow split --tokenizer tokenizer.json --format npz --train-on assistant "
        "--chat-template chatml"
    )

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "chats.jsonl").write_bytes(chats)
    manifest = _run(
        command, tmp_path, {"chats.jsonl": tmp_path / "data" / "chats.jsonl", "tokenizer.json": tok}
    )
    assert manifest["stats"] == shown["statistics"]
    assert 0 < manifest["stats"]["trained_targets"] < manifest["stats"]["packed_tokens"] / 2


def test_records_without_an_uploaded_tokenizer_get_a_placeholder_for_the_models():
    at = app(builtin_name="python-docs-chat").run()
    at.switch_page("pages/export.py").run()
    assert not at.exception, at.exception
    command = _command(at)
    assert "--tokenizer tokenizer.json" in command and "--train-vocab" not in command
    assert command.endswith("--train-on assistant --chat-template chatml")
    assert [c for c in at.caption if "replace `tokenizer.json` with its path" in c.value]
