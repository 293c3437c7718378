"""Real-browser tests: Playwright drives Debian's Chromium against ``streamlit run app.py``.

Run with ``pytest -m browser tests/test_browser.py``. Screenshots of every page go to
``test-artifacts/``; with ``PACKVIZ_UPDATE_SCREENSHOTS=1`` also to ``docs/screenshots/``.
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

import pytest

pytest.importorskip("playwright")
from playwright.sync_api import Page, expect  # noqa: E402

import packviz as pv  # noqa: E402

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
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
PAGES = ["corpus", "packing", "masks", "compare", "export", "audit"]

if not Path(CHROMIUM).exists():
    pytest.skip(
        "Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True
    )


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {
        **browser_context_args,
        "accept_downloads": True,
        "viewport": {"width": 1400, "height": 1000},
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve():
    """A fresh ``streamlit run app.py`` on a free loopback port; yields its URL, then
    terminates that process (by its handle)."""
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
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
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
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def server():
    """One server for the routed tests: its first request is the app's root."""
    with serve() as url:
        yield url


def wait_for_app(page: Page, timeout: float = 60_000) -> None:
    """Wait until Streamlit has finished the current run (as Streamlit's own e2e tests do)."""
    page.wait_for_timeout(200)
    app = page.get_by_test_id("stApp")
    expect(app).to_have_attribute("data-test-connection-state", "CONNECTED", timeout=timeout)
    expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=timeout)
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=timeout)


def goto(page: Page, server: str, name: str = "") -> None:
    """Open a page by name; Corpus is the default page, served at ``/``."""
    page.goto(f"{server}/{'' if name == 'corpus' else name}")
    wait_for_app(page)


def shot(page: Page, name: str, *, docs: bool = True) -> None:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if docs and os.environ.get("PACKVIZ_UPDATE_SCREENSHOTS") == "1":
        DOC_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOC_SHOTS / f"{name}.png")


def set_max_len(page: Page, value: int) -> None:
    field = page.get_by_test_id("stSidebar").get_by_role("spinbutton", name="Max length")
    field.fill(str(value))
    field.press("Enter")
    wait_for_app(page)


def metric(page: Page, label: str) -> str:
    m = page.get_by_test_id("stMetric").filter(has=page.get_by_text(label, exact=True)).first
    return m.get_by_test_id("stMetricValue").inner_text()


def select(page: Page, label: str, option: str) -> None:
    page.get_by_test_id("stSidebar").get_by_label(f"Selected {label}").or_(
        page.get_by_test_id("stSidebar").get_by_role("combobox", name=label)
    ).first.click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_for_app(page)


def main(page: Page):
    return page.get_by_test_id("stMainBlockContainer")


def heatmaps(page: Page):
    return page.locator(".js-plotly-plot .heatmaplayer")


def test_pages_render_and_settings_change_numbers(page: Page, server: str):
    goto(page, server, "packing")
    expect(main(page).get_by_role("heading", name="Packing", exact=True)).to_be_visible()
    expect(heatmaps(page)).to_have_count(2, timeout=30_000)
    rows_2048 = metric(page, "Rows")
    set_max_len(page, 512)
    rows_512 = metric(page, "Rows")
    assert int(rows_512.replace(",", "")) > int(rows_2048.replace(",", ""))
    select(page, "Strategy", "padded")
    rows_padded = metric(page, "Rows")
    assert int(rows_padded.replace(",", "")) > int(rows_512.replace(",", ""))
    select(page, "Strategy", "best_fit")
    set_max_len(page, 1024)
    # settings are kept when moving between pages
    page.get_by_test_id("stSidebarNav").get_by_text("Masks").click()
    wait_for_app(page)
    expect(
        page.get_by_test_id("stSidebar").get_by_role("spinbutton", name="Max length")
    ).to_have_value("1024")
    expect(heatmaps(page).first).to_be_visible(timeout=30_000)


def test_screenshots_of_every_page(page: Page, server: str):
    for name in PAGES:
        goto(page, server, name)
        expect(
            main(page).get_by_role("heading", name=name.capitalize(), exact=True)
        ).to_be_visible()
        if name in ("packing", "masks", "compare", "corpus"):
            expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
        page.wait_for_timeout(500)
        assert page.get_by_test_id("stException").count() == 0
        assert page.get_by_role("dialog").count() == 0
        shot(page, name)


def test_audit_runs_and_shows_each_paths_verdict(page: Page, server: str):
    goto(page, server, "corpus")  # through the router, as a user arrives
    page.get_by_test_id("stSidebarNav").get_by_text("Audit").click()
    wait_for_app(page)
    expect(main(page).get_by_role("heading", name="Audit", exact=True)).to_be_visible()
    page.get_by_role("button", name="Run the audit").click()
    wait_for_app(page, timeout=180_000)
    expect(main(page).get_by_role("heading", name="2 exact, 3 leaking")).to_be_visible()
    expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()
    assert page.get_by_test_id("stException").count() == 0
    shot(page, "audit")


TEXT = "\n\n".join(
    f"Upload paragraph {i}. " + "tokens and more tokens " * (3 + i % 11) for i in range(40)
)


def test_upload_then_download_export(page: Page, server: str, tmp_path: Path):
    goto(page, server, "corpus")
    page.get_by_text("Upload", exact=True).click()
    wait_for_app(page)
    src = tmp_path / "mydocs.txt"
    src.write_text(TEXT)
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(src))
    wait_for_app(page)
    expect(page.get_by_test_id("stMetric").first).to_be_visible(timeout=60_000)
    assert metric(page, "Documents") == "40"
    shot(page, "corpus-upload", docs=False)

    page.get_by_test_id("stSidebarNav").get_by_text("Packing").click()
    wait_for_app(page)
    expect(heatmaps(page)).to_have_count(2, timeout=30_000)

    page.get_by_test_id("stSidebarNav").get_by_text("Export").click()
    wait_for_app(page)
    with page.expect_download(timeout=60_000) as info:
        page.get_by_role("button", name="Download").click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    arrays = pv.load(path)
    assert arrays.doc_ids.shape[1] == 2048  # a new browser session starts from the defaults
    assert int(arrays.doc_ids.max()) == 39
    assert arrays.metadata["corpus"] == "upload: mydocs.txt"


def sidebar_settings(page: Page) -> dict[str, str]:
    sb = page.get_by_test_id("stSidebar")
    out = {"Max length": sb.get_by_role("spinbutton", name="Max length").input_value()}
    for label in ("Strategy", "Sort", "Overflow"):
        out[label] = sb.get_by_test_id("stSelectbox").filter(has_text=label).inner_text()
    return out


def page_numbers(page: Page, name: str) -> dict[str, str]:
    """Heading, sidebar settings and every metric a page shows (but timings)."""
    expect(main(page).get_by_role("heading", name=name.capitalize(), exact=True)).to_be_visible()
    labels = page.get_by_test_id("stMetricLabel").all_inner_texts()
    values = page.get_by_test_id("stMetricValue").all_inner_texts()
    shown = {k: v for k, v in zip(labels, values, strict=True) if not v.endswith(" ms")}
    return {**sidebar_settings(page), **shown}


def test_every_page_is_the_same_routed_and_alone(page: Page, server: str):
    """Streamlit runs a page file on its own when the first request after the server
    starts is that page's URL. Each page must then show the same sidebar, defaults and
    numbers as through the router — for every page, on a fresh server each time."""
    routed = {}
    for name in PAGES:
        goto(page, server, name)
        expect(page.get_by_test_id("stSidebar")).to_be_visible()
        routed[name] = page_numbers(page, name)
    for name in PAGES[1:]:  # the root URL always runs the router
        with serve() as fresh:
            goto(page, fresh, name)
            assert page.get_by_test_id("stException").count() == 0
            alone = page_numbers(page, name)
            shot(page, f"alone-{name}", docs=False)
        assert alone == routed[name], name
        assert alone["Max length"] == "2048"
