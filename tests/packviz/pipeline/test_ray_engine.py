"""``--engine ray`` on a local Ray cluster (``ray.init(num_cpus=2)``): the same bytes as
the local engine, a worker killed mid-job is retried, a driver killed mid-job resumes."""

from __future__ import annotations

import os

# read by Ray when it is imported: loopback only, no token file in ~/.ray, no usage stats
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import ray  # noqa: E402
from corpus_files import cli_env, documents, tokenizer_file, tree_bytes, write_jsonl  # noqa: E402

import packviz as pv  # noqa: E402
from packviz.pipeline.ray_engine import RayEngine  # noqa: E402

ARGS = {"max_len": 128, "rows_per_shard": 25}


@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance with 2 CPUs owned by this test process; always shut down."""
    if ray.is_initialized():
        ray.shutdown()
    tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: socket paths live under it
    context = ray.init(num_cpus=2, object_store_memory=128 << 20, include_dashboard=False,
                       log_to_driver=False, logging_level="ERROR", _temp_dir=tmp)  # fmt: skip
    try:
        yield context.address_info["gcs_address"]
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    for i in range(3):
        write_jsonl(d / f"c{i}.jsonl", documents(1500, seed=10 + i, blank_every=40))
    return d, tokenizer_file(d.parent)


@pytest.fixture(scope="module")
def local_output(corpus, tmp_path_factory):
    """The reference: the same job on the local engine."""
    d, tok = corpus
    out = tmp_path_factory.mktemp("local") / "out"
    pv.pack_corpus(d, out, tokenizer=tok, workers=1, progress=False, log=lambda s: None, **ARGS)
    return out


def test_ray_gives_the_local_engines_bytes(cluster, corpus, local_output, tmp_path, monkeypatch):
    monkeypatch.setenv("PACKVIZ_PART_BYTES", "40000")  # several parts per file
    d, tok = corpus
    report = pv.pack_corpus(d, tmp_path / "out", tokenizer=tok, engine="ray", progress=False,
                            log=lambda s: None, **ARGS)  # fmt: skip
    assert tree_bytes(tmp_path / "out") == tree_bytes(local_output)
    assert report.memory["workers"] == 2  # the cluster's CPUs
    assert ray.is_initialized()  # a cluster it did not start is left running


def _ray_workers_running(name: str) -> list[int]:
    """Ray worker processes under this test process whose title shows a ``name`` task."""
    found, todo = [], [os.getpid()]
    while todo:
        pid = todo.pop()
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
            title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            continue
        if title.startswith("ray::") and name in title:
            found.append(pid)
    return found


def test_a_worker_killed_mid_job_is_retried(cluster, corpus, local_output, tmp_path, monkeypatch):
    monkeypatch.setenv("PACKVIZ_PART_BYTES", "8000")  # many small tokenize tasks
    d, tok = corpus
    out = tmp_path / "out"
    killed: list[int] = []

    def kill_one_tokenizer():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            if list((out / ".packviz-work" / "tokens").glob("part-*.json")):
                for pid in _ray_workers_running("MapBatches"):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    break
            time.sleep(0.005)

    watcher = threading.Thread(target=kill_one_tokenizer, daemon=True)
    watcher.start()
    pv.pack_corpus(d, out, tokenizer=tok, engine="ray", progress=False, log=lambda s: None, **ARGS)
    watcher.join()
    assert killed, "a tokenizing worker was found and killed"
    assert tree_bytes(out) == tree_bytes(local_output)


def test_a_killed_driver_resumes_like_the_local_engine(cluster, corpus, local_output, tmp_path):
    d, tok = corpus
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "packviz", "pack", str(d), "--out", str(out), "--tokenizer",
            str(tok), "--max-len", "128", "--rows-per-shard", "25", "--engine", "ray",
            "--ray-address", cluster]  # fmt: skip
    env = cli_env({"PACKVIZ_PART_BYTES": "8000"})
    driver = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while len(list((out / ".packviz-work" / "tokens").glob("part-*.json"))) < 3:
            assert driver.poll() is None, driver.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        driver.kill()  # SIGKILL, the driver only: the cluster lives on
        driver.communicate()
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.communicate()
    assert driver.returncode == -signal.SIGKILL
    assert not (out / "manifest.json").exists()
    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert tree_bytes(out) == tree_bytes(local_output)


def test_errors_inside_ray_tasks_reach_the_user_as_they_are(cluster, tmp_path, corpus):
    _, tok = corpus
    (tmp_path / "c.jsonl").write_text('{"text": "a"}\n{"body": "b"}\n')
    with pytest.raises(ValueError, match=r"c\.jsonl line 2 has no field 'text'"):
        pv.pack_corpus(tmp_path / "c.jsonl", tmp_path / "o", tokenizer=tok, engine="ray",
                       progress=False, log=lambda s: None)  # fmt: skip
    engine = RayEngine()
    assert engine.cpus() == 2
    engine.close()  # not its cluster: stays up
    assert ray.is_initialized()


def test_fine_tuning_records_on_ray_under_a_per_node_budget(cluster, tmp_path):
    import json

    tok = tokenizer_file(tmp_path)
    words = documents(400, seed=21)
    records = [{"prompt": words[2 * i], "completion": " " + words[2 * i + 1]} for i in range(200)]
    (tmp_path / "sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    kw = {"tokenizer": tok, "train_on": "completion", "progress": False, "log": lambda s: None}
    pv.pack_corpus(tmp_path / "sft.jsonl", tmp_path / "local", workers=1, **kw, **ARGS)
    report = pv.pack_corpus(tmp_path / "sft.jsonl", tmp_path / "ray", engine="ray",
                            memory_budget="300MB", **kw, **ARGS)  # fmt: skip
    assert report.memory["workers"] == 1  # 300 MB fits one task on the 2-CPU node
    assert tree_bytes(tmp_path / "ray") == tree_bytes(tmp_path / "local")
    assert report.manifest["corpus"]["trained_flags"] is True
