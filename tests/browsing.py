"""Driving the dashboard in Debian's Chromium with Playwright: the server, waiting for a
run to finish, and reading what the page shows (text, plotly figures, element boxes).

Used by ``tests/browser``; see ``../shared/docs/testing-the-app.md`` for why each step is
done this way (system Chromium, no ``playwright install``, Streamlit's run states).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, expect

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
DOC_SHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGES = ["corpus", "recommend", "packing", "masks", "compare", "document", "loss", "export"]
VIEWPORTS = {
    "1280x800": {"width": 1280, "height": 800},
    "1920x1080": {"width": 1920, "height": 1080},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(*extra: str):
    """A fresh ``streamlit run app.py`` on a free loopback port; yields (url, process),
    then terminates that process (by its handle)."""
    port = _free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / f"streamlit-server-{port}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--server.fileWatcherType",
            "none",
            "--browser.gatherUsageStats",
            "false",
            *extra,
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.read().decode().strip() == "ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start; see {log.name}")
            time.sleep(0.2)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (children, grandchildren, …), read from /proc."""
    parents: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in parents.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def wait_for_app(page: Page, timeout: float = 90_000) -> None:
    """Wait until Streamlit has finished the current run (as Streamlit's own e2e tests do)."""
    page.wait_for_timeout(200)
    app = page.get_by_test_id("stApp")
    expect(app).to_have_attribute("data-test-connection-state", "CONNECTED", timeout=timeout)
    expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=timeout)
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=timeout)


def goto(page: Page, server: str, name: str = "", query: str = "") -> None:
    """Open a page by name (Corpus, the default, is served at ``/``)."""
    path = "" if name == "corpus" else name
    page.goto(f"{server}/{path}{'?' + query if query else ''}")
    wait_for_app(page)


def nav(page: Page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    wait_for_app(page)


def main(page: Page):
    return page.get_by_test_id("stMainBlockContainer")


def no_errors(page: Page) -> None:
    assert page.get_by_test_id("stException").count() == 0
    assert page.get_by_test_id("stAlertContentError").count() == 0, page.get_by_test_id(
        "stAlertContentError"
    ).all_inner_texts()


def shot(page: Page, name: str, *, docs: str | None = None) -> None:
    """Screenshot of the whole page: the viewport is made as tall as the content (the
    app scrolls inside its own container, so a plain full-page shot would cut it). With
    ``PACKVIZ_UPDATE_SCREENSHOTS=1``, ``docs`` names the copy in ``docs/screenshots/``."""
    ARTIFACTS.mkdir(exist_ok=True)
    size = page.viewport_size
    height = page.evaluate(
        "() => { const m = document.querySelector('[data-testid=stMain]');"
        " return m ? m.scrollHeight : document.body.scrollHeight; }"
    )
    page.set_viewport_size(
        {"width": size["width"], "height": min(max(height, size["height"]), 4000)}
    )
    page.wait_for_timeout(400)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size(size)
    if docs and os.environ.get("PACKVIZ_UPDATE_SCREENSHOTS") == "1":
        DOC_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOC_SHOTS / f"{docs}.png")


def set_max_len(page: Page, value: int) -> None:
    field = page.get_by_test_id("stSidebar").get_by_role("spinbutton", name="Max length")
    field.fill(str(value))
    field.press("Enter")
    wait_for_app(page)


def select(page: Page, label: str, option: str, *, where=None) -> None:
    box = (
        (where or page.get_by_test_id("stSidebar"))
        .get_by_test_id("stSelectbox")
        .filter(has_text=label)
    )
    # scrolled into view first: at 800 px the sidebar scrolls, and a popover opened while
    # its container is still scrolling closes at once (react-aria), so the option never shows
    box.first.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    box.first.click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_for_app(page)


def metric(page: Page, label: str) -> str:
    m = page.get_by_test_id("stMetric").filter(has=page.get_by_text(label, exact=True)).first
    return m.get_by_test_id("stMetricValue").inner_text()


def metric_delta(page: Page, label: str) -> str:
    m = page.get_by_test_id("stMetric").filter(has=page.get_by_text(label, exact=True)).first
    return m.get_by_test_id("stMetricDelta").inner_text()


def figure(page: Page, index: int = 0) -> dict:
    """A plotly figure as the browser holds it: traces and the laid-out axes ranges."""
    return page.evaluate(
        """(i) => {
          const g = document.querySelectorAll('.js-plotly-plot')[i];
          const axes = {};
          const arr = v => (v == null ? [] : Array.from(v));
          for (const [k, v] of Object.entries(g._fullLayout)) {
            if (/^[xy]axis\\d*$/.test(k)) axes[k] = {range: v.range, type: v.type};
          }
          return {
            data: g._fullData.map(t => ({name: t.name, type: t.type, mode: t.mode, x: arr(t.x),
                                         y: arr(t.y), text: t.text})),
            axes, title: (g._fullLayout.title.text || '').replace(/<[^>]*>/g, ''),
          };
        }""",
        index,
    )


def boxes(page: Page, selector: str, within=None) -> list[dict]:
    """Bounding boxes of the visible elements matching ``selector``."""
    loc = (within or page).locator(selector)
    return [b for b in (loc.nth(i).bounding_box() for i in range(loc.count())) if b]


def overlap(a: dict, b: dict) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def any_overlap(items: list[dict], others: list[dict] | None = None) -> bool:
    if others is None:
        return any(overlap(a, b) for i, a in enumerate(items) for b in items[i + 1 :])
    return any(overlap(a, b) for a in items for b in others)


def run_offered(page: Page, action: str) -> None:
    """Click the page's "<action> (about …)" button when the work is offered rather than
    run at once (it depends on the predicted time), and wait for the result."""
    button = page.get_by_test_id("stMainBlockContainer").get_by_role(
        "button", name=f"{action} (about"
    )
    if button.count():
        button.first.click()
        wait_for_app(page, timeout=300_000)


def ticks(locator, axis: str = "x") -> list[str]:
    """Tick labels of a plotly chart (SVG text: read as text content)."""
    return locator.locator(f".{axis}tick text").all_text_contents()
