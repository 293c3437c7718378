"""``packviz pack`` as a user runs it: the console script in a subprocess, killed with
SIGKILL and run again, starved of disk, held to a memory budget, logging progress."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from corpus_files import cli, cli_env, documents, tokenizer_file, tree_bytes, write_jsonl

from benchmarks._proc_memory import TreeMemory

MB = 2**20
PACK = ["--max-len", "128", "--rows-per-shard", "20", "--workers", "2"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    for i in range(3):
        write_jsonl(d / f"c{i}.jsonl", documents(2000, seed=i, blank_every=50))
    return d, tokenizer_file(d.parent)


@pytest.fixture(scope="module")
def uninterrupted(corpus, tmp_path_factory):
    d, tok = corpus
    out = tmp_path_factory.mktemp("full") / "out"
    r = cli("pack", str(d), "--out", str(out), "--tokenizer", str(tok), *PACK,
            env={"PACKVIZ_PART_BYTES": "30000"})  # fmt: skip
    assert r.returncode == 0, r.stderr
    return out, r


def _console_script() -> str:
    path = shutil.which("packviz")
    assert path, "the packviz console script is installed (pip install -e .)"
    return path


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [_console_script(), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env({"PACKVIZ_PART_BYTES": "30000"}),
        start_new_session=True,  # its own process group: the test can clean up after it
    )


def _stop_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


@pytest.mark.parametrize(
    ("moment", "whole_group"),
    [("tokens/part-*.json", False), ("shards/shard-*.json", True)],
    ids=["driver killed in pass 1", "job killed in pass 2"],
)
def test_sigkill_then_rerun_gives_the_same_bytes(
    corpus, uninterrupted, tmp_path, moment, whole_group
):
    d, tok = corpus
    out = tmp_path / "out"
    args = ["pack", str(d), "--out", str(out), "--tokenizer", str(tok), *PACK]
    proc = _start(args)
    try:
        deadline = time.monotonic() + 300
        while not list((out / ".packviz-work").glob(moment)):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL) if whole_group else proc.kill()
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        assert not (out / "manifest.json").exists()
    finally:
        _stop_group(proc)  # orphaned workers, if any
    rerun = _start(args)
    try:
        stdout, stderr = rerun.communicate(timeout=600)
    finally:
        _stop_group(rerun)
    assert rerun.returncode == 0, stderr
    assert tree_bytes(out) == tree_bytes(uninterrupted[0])
    assert "packed 6,000 documents" in stdout


def test_progress_is_logged_in_lines_and_the_summary_printed(uninterrupted):
    out, r = uninterrupted
    lines = r.stderr.splitlines()
    for stage in ("hash inputs", "tokenize", "write shards"):
        assert any(line.startswith(f"{stage}: done") for line in lines), (stage, lines)
    assert any(line.startswith("plan: ") for line in lines)
    assert "\r" not in r.stderr  # no bars when stderr is not a terminal
    manifest = json.loads((out / "manifest.json").read_text())
    s = manifest["stats"]
    assert f"{s['n_rows']:,} rows of 128" in r.stdout
    assert f"efficiency {100 * s['efficiency']:.2f} %" in r.stdout
    assert "time: hash inputs" in r.stdout and "peak memory" in r.stdout


def _limit_file_size(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past it fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_write_error_exits_non_zero_naming_the_file(corpus, tmp_path):
    d, tok = corpus
    out = tmp_path / "out"
    r = cli("pack", str(d), "--out", str(out), "--tokenizer", str(tok), "--format", "npz", *PACK,
            "--rows-per-shard", "100", env={"PACKVIZ_PART_BYTES": "30000"},
            preexec_fn=_limit_file_size(120_000))  # fmt: skip
    assert r.returncode == 2, r.stderr
    (message,) = [line for line in r.stderr.splitlines() if "error:" in line]
    assert "packviz pack: error: cannot write " in message
    assert "shard-0000" in message and "File too large" in message
    assert not (out / "manifest.json").exists()
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]


def test_bad_input_exits_non_zero_with_one_line(tmp_path, corpus):
    _, tok = corpus
    (tmp_path / "c.jsonl").write_text('{"text": "a"}\n{"body": "b"}\n')
    r = cli(
        "pack", str(tmp_path / "c.jsonl"), "--out", str(tmp_path / "o"), "--tokenizer", str(tok)
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith("packviz pack: error: ")
    assert "c.jsonl line 2 has no field 'text'" in r.stderr
    assert "Traceback" not in r.stderr


def test_peak_memory_of_all_processes_stays_within_the_budget(corpus, tmp_path):
    d, tok = corpus
    budget = 600 * MB
    proc = subprocess.Popen(
        [
            _console_script(),
            "pack",
            str(d),
            "--out",
            str(tmp_path / "o"),
            "--tokenizer",
            str(tok),
            "--max-len",
            "512",
            "--rows-per-shard",
            "64",
            "--workers",
            "2",
            "--memory-budget",
            f"{budget}",
        ],  # fmt: skip
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env({"PACKVIZ_PART_BYTES": "200000"}),
        start_new_session=True,
    )
    try:
        with TreeMemory(proc.pid) as mem:
            stdout, stderr = proc.communicate(timeout=600)
    finally:
        _stop_group(proc)
    assert proc.returncode == 0, stderr
    assert len(mem.hwm) == 5  # the driver, two workers, the fork server, the resource tracker
    assert mem.hwm_total <= budget, {p: v / MB for p, v in mem.hwm.items()}
    assert mem.anon_total < mem.hwm_total
    assert "; 2 workers;" in stdout  # the budget fitted both
    reported = int(stdout.split("peak memory: ")[1].split(" MiB")[0].replace(",", ""))
    assert reported * MB <= budget
    assert Path(tmp_path / "o" / "manifest.json").is_file()
