"""Real-browser tests of issue 14, each at 1280×800 and 1920×1080: charts that do not
mislead, work that is offered instead of blocking, and the views that decide
(recommendation, A/B, one document's story, loss weights), shareable and exportable."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import pytest

pytest.importorskip("playwright")
from browsing import (  # noqa: E402
    CHROMIUM,
    any_overlap,
    boxes,
    descendants,
    figure,
    goto,
    main,
    metric,
    metric_delta,
    nav,
    no_errors,
    run_offered,
    select,
    set_max_len,
    shot,
    ticks,
    wait_for_app,
)
from playwright.sync_api import Page, expect  # noqa: E402

import packviz as pv  # noqa: E402

pytestmark = pytest.mark.browser
if not Path(CHROMIUM).exists():
    pytest.skip(
        "Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True
    )

SYNTH = "corpus_source=Synthetic&synth_n=20000"


def synth_lengths(n=20000):
    return pv.synthetic_lengths(n, median=300, sigma=1.0, seed=0)


def plots(page: Page):
    return page.locator(".js-plotly-plot")


def tag(page: Page) -> str:
    return str(page.viewport_size["width"])


# --------------------------------------------------------------------------- corpus


def test_histogram_axis_stays_on_the_data(page: Page, server: str, tmp_path: Path):
    goto(page, server, "corpus", SYNTH)
    sb = page.get_by_test_id("stSidebar")
    sb.get_by_role("radio", name="256", exact=True).click()  # quick pick: marks below ~300
    wait_for_app(page)
    expect(plots(page).first).to_be_visible()
    fig = figure(page, 0)
    lo, hi = fig["axes"]["xaxis"]["range"]
    assert fig["axes"]["xaxis"]["type"] == "log"
    assert hi - lo < 7 and hi < 6  # log10 units: no 10^99
    plot = plots(page).first.locator(".cartesianlayer .subplot.xy").bounding_box()
    for b in boxes(page, ".annotation", plots(page).first):  # labels inside the plot area
        assert plot["x"] - 2 <= b["x"] and b["x"] + b["width"] <= plot["x"] + plot["width"] + 2
    shot(page, f"histogram-256-{tag(page)}")
    # an uploaded .txt with short paragraphs: the same holds
    page.get_by_text("Upload", exact=True).click()
    wait_for_app(page)
    src = tmp_path / "short.txt"
    src.write_text("\n\n".join(f"Short paragraph {i}." for i in range(30)))
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(src))
    wait_for_app(page)
    expect(plots(page).first).to_be_visible(timeout=60_000)
    lo, hi = figure(page, 0)["axes"]["xaxis"]["range"]
    assert hi < 5


def test_uploads_are_listed_removable_and_the_tokenizer_is_named(
    page: Page, server: str, tmp_path: Path
):
    goto(page, server, "corpus", "corpus_source=Upload")
    a, b = tmp_path / "first.txt", tmp_path / "second.txt"
    a.write_text("\n\n".join(f"First file paragraph {i} with words." for i in range(25)))
    b.write_text("\n\n".join(f"Second file paragraph {i}." for i in range(12)))
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(a))
    wait_for_app(page)
    expect(main(page).locator("strong", has_text="first.txt")).to_be_visible(timeout=60_000)
    expect(main(page).get_by_text("Tokenizer in use:")).to_be_visible()
    expect(main(page).get_by_text("<|endoftext|> (id 0)", exact=False)).to_be_visible()
    nav(page, "Packing")
    nav(page, "Corpus")  # the uploader is empty again; the file is still listed and used
    expect(main(page).locator("strong", has_text="first.txt")).to_be_visible()
    assert metric(page, "Documents") == "25"
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(b))
    wait_for_app(page)
    expect(main(page).locator("strong", has_text="second.txt")).to_be_visible(timeout=60_000)
    assert metric(page, "Documents") == "37"
    page.locator(".st-key-remove_upload_0 button").click()
    wait_for_app(page)
    expect(main(page).locator("strong", has_text="first.txt")).to_have_count(0)
    assert metric(page, "Documents") == "12"
    shot(page, f"uploads-{tag(page)}")


# --------------------------------------------------------------------------- long work


def _workers(server_pid: int) -> list[int]:
    """The server's worker processes (``python -m dashboard.worker``)."""
    out = []
    for pid in descendants(server_pid):
        try:
            if b"dashboard.worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                out.append(pid)
        except OSError:
            continue
    return out


def _until(check, seconds: float, page: Page) -> bool:
    """Poll ``check()`` every 100 ms for up to ``seconds``; its last answer."""
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    return bool(check())


def test_slow_work_is_offered_with_progress_and_a_stop_that_stops(page: Page, served, viewport):
    server, proc = served
    goto(
        page,
        server,
        "packing",
        "corpus_source=Synthetic&synth_n=1000000&sort=random&strategy=first_fit",
    )
    run = main(page).get_by_role("button", name="Pack (about")
    expect(run).to_be_visible()
    assert page.get_by_test_id("stMetric").count() == 0  # nothing computed yet
    run.click()
    expect(page.get_by_test_id("stProgress")).to_be_visible(timeout=20_000)
    stop = main(page).get_by_role("button", name="Stop")
    expect(stop).to_be_visible()
    assert _until(lambda: _workers(proc.pid), 20, page), "no worker process started"
    shot(page, f"progress-{tag(page)}")
    stop.click()
    wait_for_app(page)
    expect(main(page).get_by_text("Stopped packing 1,000,000 documents")).to_be_visible()
    assert _until(lambda: not _workers(proc.pid), 10, page), "the worker still runs after Stop"
    expect(main(page).get_by_role("button", name="Pack (about")).to_be_visible()
    no_errors(page)


def test_a_setting_changed_mid_run_stops_the_job(page: Page, served, viewport):
    """The job runs for settings the session no longer asks for: its worker ends."""
    server, proc = served
    goto(
        page,
        server,
        "packing",
        "corpus_source=Synthetic&synth_n=3000000&sort=random&strategy=first_fit",
    )  # packing takes about 12 s here
    main(page).get_by_role("button", name="Pack (about").click()
    expect(main(page).get_by_role("button", name="Stop")).to_be_visible(timeout=20_000)
    assert _until(lambda: _workers(proc.pid), 20, page), "no worker process started"
    select(page, "Strategy", "next_fit")  # mid-run: the plan asked for is another one
    assert _until(lambda: not _workers(proc.pid), 5, page), (
        "the worker still runs for settings no longer asked for"
    )
    no_errors(page)


# --------------------------------------------------------------------------- compare


def test_compare_reads_right_and_fits(page: Page, server: str, tmp_path: Path):
    goto(page, server, "compare", SYNTH + "&max_len=2048")
    expect(plots(page)).to_have_count(2, timeout=60_000)
    no_errors(page)
    # deltas: an equal value has no arrow and says so; reference values are not "↑"
    assert metric_delta(page, "Lost tokens") == "same as padding"
    lost = page.get_by_test_id("stMetric").filter(has=page.get_by_text("Lost tokens", exact=True))
    assert lost.get_by_test_id("stMetricDeltaIcon-Up").count() == 0
    assert metric_delta(page, "Rows").endswith("vs padding")
    # metric values are not truncated
    for v in page.get_by_test_id("stMetricValue").all():
        assert v.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), v.inner_text()
    # strategy bars: the lower bound does not print over the bar labels
    bars = plots(page).nth(0)
    assert not any_overlap(boxes(page, ".bartext", bars), boxes(page, ".annotation", bars))
    # the table fits: no horizontal scrolling at 1280 px
    grid = page.get_by_test_id("stDataFrame").first
    assert grid.evaluate(
        "e => { const s = e.querySelector('.dvn-scroller'); return !s || s.scrollWidth <= s.clientWidth + 1; }"
    )
    headers = grid.locator("[role=columnheader]").all_inner_texts()
    assert not [h for h in headers if "_" in h]  # no snake_case headers
    # wrapped's cost is spelled out
    expect(main(page).get_by_text("wrapped uses the fewest rows", exact=False)).to_be_visible()
    # the sweep: k ticks, the current max length marked, the legend clear of everything
    sweep = plots(page).nth(1)
    labels = ticks(sweep)
    assert "2k" in labels and "8k" in labels and not [t for t in labels if "." in t]
    shapes = figure(page, 1)
    assert shapes["data"][0]["name"] in pv.STRATEGIES
    legend = boxes(page, ".legend", sweep)
    texts = boxes(page, ".xtick text, .ytick text, .g-gtitle, .annotation", sweep)
    assert legend and not any_overlap(legend, texts)
    # CSV buttons are visible without hovering, and download
    for name in ("Download CSV", "Download sweep CSV"):
        button = main(page).get_by_role("button", name=name, exact=True)
        expect(button).to_be_visible()
        with page.expect_download() as info:
            button.click()
        rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text())))
        assert rows and "strategy" in rows[0]
    shot(page, f"compare-checks-{tag(page)}")


def test_sweep_reaches_the_current_max_length_at_131072(page: Page, server: str):
    goto(page, server, "compare", "corpus_source=Synthetic&synth_n=3000&max_len=131072")
    expect(plots(page)).to_have_count(2, timeout=60_000)
    run_offered(page, "Run the sweep")
    labels = ticks(plots(page).nth(1))
    assert labels[-1] == "128k" and "32k" in labels


# --------------------------------------------------------------------------- masks


def test_masks_labels_axis_and_bytes(page: Page, server: str):
    goto(
        page, server, "masks", "corpus_source=Synthetic&synth_n=20000&synth_median=20&max_len=4096"
    )
    expect(plots(page)).to_have_count(3, timeout=60_000)
    first = plots(page).first
    labels = boxes(page, ".xtick text", first)
    assert 2 <= len(labels) and not any_overlap(labels)  # many pieces, no overlapping labels
    block = figure(page, 2)["axes"]["xaxis"]["range"]
    assert block[0] >= 0 and block[1] <= 4096 + 128  # not -1000 … 3000
    table = page.get_by_test_id("stDataFrame").first
    expect(table).to_contain_text("16.0 MiB")  # a 4096² bool mask, formatted
    shot(page, f"masks-checks-{tag(page)}")


# --------------------------------------------------------------------------- packing, A/B


def test_representative_rows_labels_and_a_b(page: Page, server: str):
    goto(page, server, "packing", SYNTH + "&max_len=1024")
    expect(plots(page)).to_have_count(2, timeout=60_000)
    rows = figure(page, 0)["data"][0]["y"]
    plan = pv.pack(synth_lengths(), 1024)
    assert [int(r) for r in rows] == pv.pick_rows(plan, 8).tolist()  # not rows 0–7
    labels = figure(page, 0)["data"][1]
    assert labels["mode"] == "text" and labels["text"]
    main(page).get_by_role("button", name="Pin as A").click()
    wait_for_app(page)
    select(page, "Strategy", "next_fit")
    expect(plots(page)).to_have_count(4, timeout=60_000)
    plan_b = pv.pack(synth_lengths(), 1024, strategy="next_fit")
    titles = [figure(page, i)["title"] for i in (2, 3)]
    assert titles == [f"A: {plan.n_rows:,} rows", f"B: {plan_b.n_rows:,} rows"]
    expect(
        main(page).get_by_text("A: 1,024 · best_fit · sort desc · split", exact=True)
    ).to_be_visible()
    a, b = (plots(page).nth(i).bounding_box() for i in (2, 3))
    assert abs(a["y"] - b["y"]) < 2 and a["x"] + a["width"] <= b["x"] + 1  # side by side
    expect(main(page).get_by_test_id("stDataFrame")).to_contain_text("B − A")
    shot(page, f"a-b-{tag(page)}")
    main(page).get_by_role("button", name="Unpin A").click()
    wait_for_app(page)


# --------------------------------------------------------------------------- deciding views


def test_recommendation_presets_weights_and_apply(page: Page, server: str):
    goto(page, server, "recommend", SYNTH + "&max_len=256&strategy=next_fit")
    run_offered(page, "Rank")
    expect(main(page).get_by_text("Use max length", exact=False)).to_be_visible(timeout=60_000)
    expect(
        main(page).get_by_text("Why it beats your current settings", exact=False)
    ).to_be_visible()
    main(page).get_by_role("radio", name="fine-tuning", exact=True).click()
    wait_for_app(page)
    run_offered(page, "Rank")  # stored points: the new weights rank without new packing
    best = pv.recommend(
        synth_lengths(),
        max_lens=sorted(set(pv.default_max_lens(256)) | set(pv.covering_max_lens(synth_lengths()))),
        weights=pv.preset_weights("fine-tuning"),
    ).best
    expect(
        main(page).get_by_text(f"Use max length {best.max_len:,} · {best.strategy}")
    ).to_be_visible()
    grid = page.get_by_test_id("stDataFrame").first
    assert grid.evaluate(  # the ranked table fits, no horizontal scrolling
        "e => { const s = e.querySelector('.dvn-scroller'); return !s || s.scrollWidth <= s.clientWidth + 1; }"
    )
    with page.expect_download() as info:
        main(page).get_by_role("button", name="Download CSV", exact=True).click()
    assert Path(info.value.path()).read_text().startswith("rank,candidate,score")
    shot(page, f"recommend-checks-{tag(page)}")
    main(page).get_by_role("button", name="Use these settings").click()
    wait_for_app(page)
    sb = page.get_by_test_id("stSidebar")
    expect(sb.get_by_role("spinbutton", name="Max length")).to_have_value(str(best.max_len))
    assert f"max_len={best.max_len}" in page.url  # the link follows


def test_document_story_by_text(page: Page, server: str):
    goto(page, server, "document", "max_len=256")
    expect(plots(page).first).to_be_visible(timeout=60_000)
    field = main(page).get_by_label("Find a document by its text")
    field.fill("Special method names")
    field.press("Enter")
    wait_for_app(page)
    expect(main(page).get_by_text("Where it was cut")).to_be_visible()
    expect(main(page).get_by_text("split into pieces in different rows")).to_be_visible()
    heat = figure(page, 0)
    assert "(red)" in heat["title"]
    shot(page, f"document-story-{tag(page)}")


def test_loss_view(page: Page, server: str):
    goto(page, server, "loss", SYNTH + "&max_len=1024&batch_rows=16")
    expect(plots(page).first).to_be_visible(timeout=60_000)
    plan = pv.pack(synth_lengths(), 1024)
    token = pv.longest_share(pv.loss_weights(plan, batch_rows=16), synth_lengths())
    assert metric(page, "Token mean, packed (best_fit)") == f"{token:.1%}"
    expect(
        main(page).get_by_text(f"carry {token:.0%} of the gradient", exact=False)
    ).to_be_visible()


# --------------------------------------------------------------------------- share, export


def test_the_link_reopens_the_same_view(page: Page, server: str, new_context, viewport):
    goto(page, server, "packing", SYNTH)
    set_max_len(page, 768)
    select(page, "Sort", "asc")
    link = page.url
    assert "max_len=768" in link and "sort=asc" in link
    rows = metric(page, "Rows")
    other = new_context(viewport=viewport).new_page()
    other.goto(link)
    wait_for_app(other)
    assert metric(other, "Rows") == rows
    expect(
        other.get_by_test_id("stSidebar").get_by_role("spinbutton", name="Max length")
    ).to_have_value("768")
    page.reload()
    wait_for_app(page)
    assert metric(page, "Rows") == rows


def test_charts_download_as_png(page: Page, server: str, tmp_path: Path):
    goto(page, server, "compare", SYNTH)
    expect(plots(page)).to_have_count(2, timeout=60_000)
    chart = plots(page).nth(1)
    camera = chart.locator(
        ".modebar-btn[data-title='Download plot as a PNG'], .modebar-btn[data-title='Download plot as a png']"
    )
    expect(camera.first).to_be_visible()  # always shown, no hover needed
    with page.expect_download(timeout=30_000) as info:
        camera.first.click()
    assert info.value.suggested_filename == "packviz-sweep.png"
    assert Path(info.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_export_size_is_close_to_the_downloaded_file(page: Page, server: str, tmp_path: Path):
    goto(page, server, "export", SYNTH + "&max_len=512&export_format=parquet")
    size = page.get_by_test_id("stMetric").filter(has=page.get_by_text("File size", exact=True))
    size.get_by_test_id("stTooltipIcon").hover()
    tip = page.get_by_test_id("stTooltipContent")
    expect(tip).to_be_visible()
    shown = int(tip.inner_text().split(" bytes")[0].replace(",", ""))
    with page.expect_download(timeout=120_000) as info:
        main(page).get_by_role("button", name="Download packed").click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    real = path.stat().st_size
    assert abs(shown - real) / real < 0.2, (shown, real)
    assert pv.load(path).doc_ids.shape[1] == 512
