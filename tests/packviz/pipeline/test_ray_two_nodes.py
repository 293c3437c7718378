"""Two Ray nodes on this machine, started like a real cluster (``ray start --head``, then
``ray start --address=...`` with its own resources): tokenizing is forced onto one node,
writing shards onto the other, and the output is still the local engine's, byte for byte.

The nodes use 127.0.0.2 and 127.0.0.3 (Ray rewrites 127.0.0.1 to the machine's address,
and a second ``ray start`` refuses a loopback-only head). Each node runs in its own
process group, killed at the end whatever happens; ``ray stop`` is never used (it stops
every Ray process on the machine).
"""

from __future__ import annotations

import os

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import ray  # noqa: E402
from corpus_files import cli_env, documents, tokenizer_file, tree_bytes, write_jsonl  # noqa: E402

import packviz as pv  # noqa: E402
from packviz.pipeline.ray_engine import RayEngine  # noqa: E402

HEAD, WORKER = "127.0.0.2", "127.0.0.3"


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_nodes():
    """Node a (head) and node b, one CPU each; this process connected as the driver."""
    if ray.is_initialized():
        ray.shutdown()
    env = cli_env()
    env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)  # `ray start --address` refuses it
    port, tmp = _free_port(HEAD), tempfile.mkdtemp(prefix="rt", dir="/tmp")
    common = ["--num-cpus=1", f"--object-store-memory={100 << 20}", "--block",
              "--disable-usage-stats"]  # fmt: skip
    procs: list[subprocess.Popen] = []

    def start(args: list[str], log: str) -> None:
        with open(Path(tmp) / log, "w") as fh:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "ray.scripts.scripts", "start", *args, *common],
                env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
            ))  # fmt: skip

    try:
        start(["--head", f"--port={port}", f"--node-ip-address={HEAD}", f"--temp-dir={tmp}",
               "--include-dashboard=false", "--resources", '{"node_a": 1}'], "head.log")  # fmt: skip
        deadline = time.monotonic() + 120
        while True:
            assert procs[0].poll() is None, (Path(tmp) / "head.log").read_text()[-2000:]
            with socket.socket() as s:
                if s.connect_ex((HEAD, port)) == 0:
                    break
            assert time.monotonic() < deadline, "the head node did not come up"
            time.sleep(0.2)
        start([f"--address={HEAD}:{port}", f"--node-ip-address={WORKER}",
               "--resources", '{"node_b": 1}'], "worker.log")  # fmt: skip
        ray.init(address=f"{HEAD}:{port}", _node_ip_address=HEAD, log_to_driver=False,
                 logging_level="ERROR")  # fmt: skip
        while len([n for n in ray.nodes() if n["Alive"]]) < 2:
            assert procs[1].poll() is None, (Path(tmp) / "worker.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the second node did not join"
            time.sleep(0.2)
        yield {
            ("a" if "node_a" in n["Resources"] else "b"): n["NodeID"]
            for n in ray.nodes()
            if n["Alive"]
        }
    finally:
        ray.shutdown()
        for p in reversed(procs):  # the worker node, then the head
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


def test_stages_on_two_nodes_give_the_local_engines_bytes(two_nodes, tmp_path, monkeypatch):
    monkeypatch.setenv("PACKVIZ_PART_BYTES", "40000")
    d = tmp_path / "corpus"
    d.mkdir()
    for i in range(2):
        write_jsonl(d / f"c{i}.jsonl", documents(1200, seed=20 + i))
    tok = tokenizer_file(tmp_path)
    args = {"tokenizer": tok, "max_len": 256, "rows_per_shard": 20, "progress": False,
            "log": lambda s: None}  # fmt: skip
    local = pv.pack_corpus(d, tmp_path / "local", workers=1, **args)

    engine = RayEngine(stage_args={
        "tokenize_part": {"resources": {"node_a": 0.01}},  # written on node a ...
        "write_shard": {"resources": {"node_b": 0.01}},  # ... read and packed on node b
    })  # fmt: skip
    report = pv.pack_corpus(d, tmp_path / "ray", engine=engine, **args)
    assert tree_bytes(tmp_path / "ray") == tree_bytes(tmp_path / "local")
    assert report.memory["nodes"] == sorted(two_nodes.values())
    assert len(local.shards) > 4
