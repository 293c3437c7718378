"""Dashboard responsiveness at scale: a 1M-document synthetic corpus (lengths only).

Drives the real pages with Streamlit's AppTest (server-side script time; no browser).
Each page starts from empty caches; for every (sort, strategy) it times the re-render
after the change and says what the page did: computed it, or offered it behind a Run button because the
predicted time is over the budget (`dashboard.jobs.AUTO_SECONDS`). It also reports the
largest plotly payload any figure sends. Then it runs the explicit long actions once
(through the worker process, as a click on Run does) and compares their predicted and
measured times.

    python benchmarks/bench_dashboard.py [--docs 1000000] [--pages packing compare]
                                         [--no-actions]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import ROOT, machine, print_table, save_results

PAGES = ("corpus", "recommend", "packing", "masks", "compare", "document", "loss", "export")
#: (page, settings, button) of the explicit long actions measured once.
ACTIONS = (
    ("packing", {"sort": "random", "strategy": "first_fit"}, "Pack"),
    ("compare", {"sort": "desc"}, "Run the sweep"),
    ("recommend", {"sort": "desc"}, "Rank"),
)


def _app(n: int, **settings):
    from streamlit.testing.v1 import AppTest

    from dashboard.state import kept_key

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=900)
    for k, v in {"corpus_source": "Synthetic", "synth_n": n, **settings}.items():
        at.session_state[kept_key(k)] = v
    return at


def _payload(at) -> float:
    return max([len(el.proto.spec.encode()) for el in at.get("plotly_chart")] or [0]) / 1e6


def _outcome(at) -> str:
    errors = [e.value for e in at.error]
    if at.exception:
        return "exception"
    if errors:
        return "error: " + errors[0][:60]
    offered = [b.label for b in at.button if " (about " in b.label]
    return "offered: " + offered[0] if offered else "computed"


def _fresh() -> None:
    """Each page and action starts from empty caches (no plan left by another page)."""
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    import packviz as pv
    from dashboard import jobs

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--pages", nargs="*", default=list(PAGES))
    ap.add_argument("--no-actions", action="store_true", help="skip the explicit long actions")
    args = ap.parse_args()
    print(f"machine: {machine()}\n", flush=True)
    rows = []
    for name in args.pages:
        _fresh()
        at = _app(args.docs)
        at.run()
        t = _timed(lambda at=at, name=name: at.switch_page(f"pages/{name}.py").run())
        rows.append(
            {"page": name, "change": "first render", "t": t, "mb": _payload(at), "ok": _outcome(at)}
        )
        for sort in pv.SORTS:
            for strategy in pv.STRATEGIES:

                def change(at=at, sort=sort, strategy=strategy):
                    at.sidebar.selectbox(key="sort").set_value(sort)
                    at.sidebar.selectbox(key="strategy").set_value(strategy)
                    at.run()

                t = _timed(change)
                rows.append(
                    {
                        "page": name,
                        "change": f"sort {sort}, {strategy}",
                        "t": t,
                        "mb": _payload(at),
                        "ok": _outcome(at),
                    }
                )
        t = _timed(at.run)
        rows.append({"page": name, "change": "rerun (nothing changed)", "t": t, "mb": _payload(at)})
        print(f"{name}: slowest {max(r['t'] for r in rows if r['page'] == name):.2f} s", flush=True)
    for r in rows:
        r["time"] = f"{r['t']:.2f} s"
        r["payload"] = f"{r['mb']:.2f} MB"
    table = print_table(
        rows,
        [
            ("page", "page"),
            ("change", "change"),
            ("time", "re-render (server)"),
            ("payload", "largest figure"),
            ("ok", "what the page did"),
        ],
    )
    worst = max(r["t"] for r in rows)
    big = max(r["mb"] for r in rows)
    summary = f"\nslowest re-render {worst:.2f} s, largest figure {big:.2f} MB\n"
    print(summary)
    actions = []
    if not args.no_actions:
        for page, settings, button in ACTIONS:
            _fresh()
            at = _app(args.docs, **settings)
            at.run()
            at.switch_page(f"pages/{page}.py").run()
            offered = [b for b in at.button if b.label.startswith(f"{button} (about ")]
            if not offered:
                actions.append({"action": f"{page}: {button}", "ok": "not offered (ran at once)"})
                continue
            label = offered[0].label
            t = _timed(lambda b=offered[0]: b.click().run())
            actions.append(
                {
                    "action": f"{page}: {label}",
                    "settings": ", ".join(f"{k} {v}" for k, v in settings.items()),
                    "time": f"{t:.1f} s",
                    "ok": _outcome(at),
                }
            )
        table += (
            "\n"
            + summary
            + "\n"
            + print_table(
                actions,
                [
                    ("action", "explicit action (button, predicted)"),
                    ("settings", "settings"),
                    ("time", "measured (worker, progress bar, Stop)"),
                    ("ok", "then"),
                ],
            )
        )
    print(f"\nauto budget: {jobs.AUTO_SECONDS} s")
    save_results("dashboard", rows + actions, table)


if __name__ == "__main__":
    main()
