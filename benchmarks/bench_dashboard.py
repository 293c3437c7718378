"""Dashboard responsiveness at scale: a 1M-document synthetic corpus (lengths only).

Drives the real pages with Streamlit's AppTest (server-side: script run time, no browser)
and times each re-render after a change of max length or strategy, on the Packing and
Compare pages; also reports the largest plotly payload any figure sends.

    python benchmarks/bench_dashboard.py [--docs 1000000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import ROOT, machine, print_table


def main() -> None:
    from streamlit.testing.v1 import AppTest

    from dashboard.state import kept_key

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=int, default=1_000_000)
    args = ap.parse_args()
    print(f"machine: {machine()}\n", flush=True)
    rows = []
    for page in ("pages/packing.py", "pages/compare.py"):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
        at.session_state[kept_key("corpus_source")] = "Synthetic"
        at.session_state[kept_key("synth_n")] = args.docs
        at.run()
        t0 = time.perf_counter()
        at.switch_page(page).run()
        rows.append(
            {
                "page": page,
                "change": "first render (draw lengths, pack)",
                "t": time.perf_counter() - t0,
            }
        )
        changes = [
            (
                "max length 2048 → 4096",
                lambda a: a.sidebar.number_input(key="max_len").set_value(4096),
            ),
            (
                "max length 4096 → 8192",
                lambda a: a.sidebar.number_input(key="max_len").set_value(8192),
            ),
            (
                "max length 8192 → 2048",
                lambda a: a.sidebar.number_input(key="max_len").set_value(2048),
            ),
            (
                "strategy → first_fit",
                lambda a: a.sidebar.selectbox(key="strategy").set_value("first_fit"),
            ),
            (
                "strategy → next_fit",
                lambda a: a.sidebar.selectbox(key="strategy").set_value("next_fit"),
            ),
            (
                "strategy → wrapped",
                lambda a: a.sidebar.selectbox(key="strategy").set_value("wrapped"),
            ),
        ]
        for label, change in changes:
            t0 = time.perf_counter()
            change(at).run()
            dt = time.perf_counter() - t0
            payload = max([len(el.proto.spec.encode()) for el in at.get("plotly_chart")] or [0])
            errors = [e.value for e in at.error]
            rows.append(
                {
                    "page": page,
                    "change": label,
                    "t": dt,
                    "mb": payload / 1e6,
                    "ok": "error: " + errors[0][:60] if errors or at.exception else "ok",
                }
            )
    for r in rows:
        r["time"] = f"{r['t']:.2f} s"
        r["payload"] = f"{r['mb']:.2f} MB" if "mb" in r else ""
    print_table(
        rows,
        [
            ("page", "page"),
            ("change", "change"),
            ("time", "re-render (server)"),
            ("payload", "largest figure"),
            ("ok", ""),
        ],
    )


if __name__ == "__main__":
    main()
