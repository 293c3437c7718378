"""Real-browser tests of the basics: every page renders, settings change the numbers and
are kept across pages, an upload flows to a downloaded file, and every page is the same
whether routed or run alone. Run with ``pytest -m browser tests/browser``; screenshots go
to ``test-artifacts/`` (with ``PACKVIZ_UPDATE_SCREENSHOTS=1`` also to ``docs/screenshots/``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("playwright")
from browsing import (  # noqa: E402
    CHROMIUM,
    PAGES,
    goto,
    main,
    metric,
    nav,
    no_errors,
    select,
    serve,
    set_max_len,
    shot,
    wait_for_app,
)
from playwright.sync_api import Page, expect  # noqa: E402

import packviz as pv  # noqa: E402

pytestmark = pytest.mark.browser
if not Path(CHROMIUM).exists():
    pytest.skip(
        "Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True
    )


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
    nav(page, "Masks")  # settings are kept when moving between pages
    expect(
        page.get_by_test_id("stSidebar").get_by_role("spinbutton", name="Max length")
    ).to_have_value("1024")
    expect(heatmaps(page).first).to_be_visible(timeout=30_000)


def test_screenshots_of_every_page(page: Page, server: str, viewport):
    for name in PAGES:
        goto(page, server, name)
        expect(
            main(page).get_by_role("heading", name=name.capitalize(), exact=True)
        ).to_be_visible()
        if name != "export":
            expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
        page.wait_for_timeout(500)
        no_errors(page)
        assert page.get_by_role("dialog").count() == 0
        shot(page, f"{name}-{viewport['width']}", docs=name if viewport["width"] == 1280 else None)


def test_audit_runs_and_shows_each_paths_verdict(page: Page, server: str):
    goto(page, server, "corpus")  # through the router, as a user arrives
    page.get_by_test_id("stSidebarNav").get_by_text("Audit").click()
    wait_for_app(page)
    expect(main(page).get_by_role("heading", name="Audit", exact=True)).to_be_visible()
    run = page.get_by_role("button", name="Run the audit")
    verdicts = main(page).get_by_role("heading", name="3 exact, 2 leaking")
    # results are kept server-wide: after the first viewport the same audit is shown at once
    expect(run.or_(verdicts)).to_be_visible(timeout=30_000)
    if run.is_visible():
        run.click()
        wait_for_app(page, timeout=180_000)
    expect(verdicts).to_be_visible()
    expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()
    assert page.get_by_test_id("stException").count() == 0
    shot(page, "audit", docs="audit")


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

    nav(page, "Packing")
    expect(heatmaps(page)).to_have_count(2, timeout=30_000)

    nav(page, "Export")
    shown = metric(page, "File size")
    with page.expect_download(timeout=60_000) as info:
        page.get_by_role("button", name="Download packed").click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    arrays = pv.load(path)
    assert arrays.doc_ids.shape[1] == 2048  # a new browser session starts from the defaults
    assert int(arrays.doc_ids.max()) == 39
    assert arrays.metadata["corpus"] == "upload: mydocs.txt"
    from packviz.limits import format_bytes

    assert shown == format_bytes(path.stat().st_size)  # small plans: the size is exact


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


@pytest.mark.parametrize("viewport", ["1280x800"], indirect=True)
def test_every_page_is_the_same_routed_and_alone(page: Page, server: str):
    """Streamlit runs a page file on its own when the first request after the server
    starts is that page's URL. Each page must then show the same sidebar, defaults and
    numbers as through the router — for every page, on a fresh server each time."""
    routed = {}
    every = [*PAGES, "audit"]
    for name in every:
        goto(page, server, name)
        expect(page.get_by_test_id("stSidebar")).to_be_visible()
        routed[name] = page_numbers(page, name)
    for name in every[1:]:  # the root URL always runs the router
        with serve() as (fresh, _):
            goto(page, fresh, name)
            no_errors(page)
            alone = page_numbers(page, name)
            shot(page, f"alone-{name}")
        assert alone == routed[name], name
        assert alone["Max length"] == "2048"
