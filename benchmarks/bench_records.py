"""What rendering chat templates in a child process costs: the same chats rendered
in this process (what the child does) and through the child, side by side in one run.

Chats: the built-in ``python-docs-chat`` records, repeated with a number in every
message until there are ``--chats`` of them. Templates: a copy of the built-in ChatML
(generation markers; the copy is not the built-in one, so it goes to the child) and the
same text without markers (assistant turns placed by a second rendering). For each:

- ``here``: `pv.render_records` with the child's work done in this process instead
  (`packviz._template_process.render` replaced by `packviz._chat_render.render_one` in
  a loop): what rendering costs without the process;
- ``child``: `pv.render_records` as it is (every chat goes through the child process);
- ``encode``: `pv.encode_records` end to end (rendering, tokenizing, flags).

The child's start (once per process) is timed separately.

    python benchmarks/bench_records.py [--chats 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import packviz as pv  # noqa: E402
from packviz import _template_process  # noqa: E402
from packviz._chat_render import render_one  # noqa: E402
from packviz.chat import CHATML, ChatTemplate  # noqa: E402

PLAIN = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def chats(n: int) -> list[dict]:
    base = pv.load_builtin_records("python-docs-chat")
    out = []
    for i in range(n):
        messages = base[i % len(base)]["messages"]
        out.append({"messages": [{**m, "content": f"{m['content']} ({i})"} for m in messages]})
    return out


def _in_process(template, chats, *, end_of_turn, today):
    """`packviz._template_process.render`, done here (no process, no limits)."""
    out = [render_one(c, template, end_of_turn, today) for c in chats]
    return [(r.text, r.spans, r.marked) for r in out]


def _child_cpu() -> float:
    """CPU seconds of this process's template children so far."""
    total = 0.0
    for child in list(_template_process._ALL):
        try:
            fields = Path(f"/proc/{child.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def best(fn, repeats: int) -> tuple[float, float]:
    """The least wall-clock and the least CPU seconds (this process and its template
    children) of ``repeats`` calls. CPU seconds hold on a busy machine; wall time not."""
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time() + _child_cpu()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() + _child_cpu() - c0)
    return min(walls), min(cpus)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chats", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    recs = chats(args.chats)
    chars = sum(len(m["content"]) for r in recs for m in r["messages"])
    texts = [r.text for r in pv.render_records(recs[:2000], train_on="all")]
    tok = pv.train_tokenizer(
        texts, vocab_size=2000, cache_dir=False, extra_special_tokens=pv.CHATML_SPECIAL_TOKENS
    )
    t0 = time.perf_counter()
    child = _template_process._Child(_template_process.RENDER_MEMORY)
    start = time.perf_counter() - t0
    rss = int(Path(f"/proc/{child.proc.pid}/status").read_text().split("VmRSS:")[1].split()[0])
    child.close()
    print(f"{args.chats:,} chats, {chars / 1e6:.1f} M characters of messages; ")
    print(f"child start {start * 1000:.0f} ms, its resident memory {rss / 1024:.0f} MiB\n")
    rows = []
    for label, source in (
        ("ChatML copy (marked)", CHATML + "{#-#}"),
        ("ChatML plain (placed)", PLAIN),
    ):
        template = ChatTemplate(source)
        pv.render_records(recs[:10], train_on="assistant", chat_template=template)  # warm
        runs: dict[str, list] = {"here": [], "child": []}
        for _ in range(args.repeats):  # alternated, so that both see the same machine
            _template_process.render, real = _in_process, _template_process.render
            try:
                runs["here"].append(
                    best(
                        lambda t=template: pv.render_records(
                            recs, train_on="assistant", chat_template=t
                        ),
                        1,
                    )
                )
            finally:
                _template_process.render = real
            runs["child"].append(
                best(
                    lambda t=template: pv.render_records(
                        recs, train_on="assistant", chat_template=t
                    ),
                    1,
                )
            )
        here = tuple(min(r[i] for r in runs["here"]) for i in (0, 1))
        child = tuple(min(r[i] for r in runs["child"]) for i in (0, 1))
        enc = best(
            lambda t=template: pv.encode_records(tok, recs, train_on="assistant", chat_template=t),
            args.repeats,
        )
        rows.append(
            {
                "template": label,
                "here_s": here[0],
                "here_cpu_s": here[1],
                "child_s": child[0],
                "child_cpu_s": child[1],
                "encode_s": enc[0],
                "encode_cpu_s": enc[1],
                "overhead_cpu_us_per_chat": (child[1] - here[1]) / args.chats * 1e6,
            }
        )
    builtin = best(lambda: pv.encode_records(tok, recs, train_on="assistant"), args.repeats)
    print("seconds: wall / CPU (this process and its template children), best of the runs")
    print(f"{'template':24} {'here':>12} {'child':>12} {'CPU +/chat':>10} {'encode':>12}")
    for r in rows:
        print(
            f"{r['template']:24} {r['here_s']:5.2f}/{r['here_cpu_s']:5.2f} "
            f"{r['child_s']:5.2f}/{r['child_cpu_s']:5.2f} "
            f"{r['overhead_cpu_us_per_chat']:8.0f}µs {r['encode_s']:5.2f}/{r['encode_cpu_s']:5.2f}"
        )
    print(
        f"{'built-in ChatML (here)':24} {'':12} {'':12} {'':10} {builtin[0]:5.2f}/{builtin[1]:5.2f}"
    )
    out = Path(os.environ.get("PACKVIZ_BENCH_OUT") or ROOT / "benchmarks" / "out")
    out.mkdir(parents=True, exist_ok=True)
    rows.append(
        {
            "template": "built-in ChatML",
            "encode_s": builtin[0],
            "encode_cpu_s": builtin[1],
            "child_start_s": start,
        }  # fmt: skip
    )
    (out / "records.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
