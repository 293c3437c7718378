"""Real-browser tests of fine-tuning records (issue 11) at 1280×800: the built-in chats
open with nothing uploaded, **Train on** changes which tokens are trained on every view,
and the downloaded file's labels are masked to match. Screenshots of the fine-tuning
views go to ``test-artifacts/`` (and ``docs/screenshots/`` with
``PACKVIZ_UPDATE_SCREENSHOTS=1``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("playwright")
from browsing import (  # noqa: E402
    CHROMIUM,
    any_overlap,
    boxes,
    figure,
    goto,
    main,
    metric,
    nav,
    no_errors,
    select,
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

CHAT = "builtin_name=python-docs-chat"


def library(train_on: str, max_len: int, overflow: str = "split"):
    """The library's plan, ids and SFT numbers for the built-in chats."""
    recs = pv.load_builtin_records("python-docs-chat")
    texts = [r.text for r in pv.render_records(recs, train_on="all")]
    tok = pv.train_tokenizer(
        texts, vocab_size=4096, cache_dir=False, extra_special_tokens=pv.CHATML_SPECIAL_TOKENS
    )
    ids = pv.encode_records(tok, recs, train_on=train_on)
    plan = pv.pack(ids.lengths, max_len, overflow=overflow)
    return plan, ids, pv.sft_stats(plan, ids, warn=False)


def train_on_box(page: Page):
    return page.get_by_test_id("stSidebar").get_by_role("combobox", name="Train on")


def trained_tokens(page: Page) -> int:
    return page.locator("span[title$='· trained']").count()


@pytest.mark.parametrize("viewport", ["1280x800"], indirect=True)
def test_train_on_flows_through_every_view(page: Page, server: str, tmp_path: Path):
    goto(page, server, "corpus", CHAT)
    no_errors(page)
    expect(main(page).get_by_text("79 chats", exact=False)).to_be_visible()
    expect(train_on_box(page)).to_have_value("assistant turns")
    expect(page.locator("span[title$='· trained']").first).to_be_visible()
    all_turns = trained_tokens(page)
    assert 0 < all_turns < page.locator("span[title^='token ']").count()
    shot(page, "finetuning-corpus", docs="finetuning-corpus")

    select(page, "Train on", "last assistant turn")
    no_errors(page)
    assert trained_tokens(page) <= all_turns
    assert "train_on=last_assistant" in page.url

    select(page, "Overflow", "truncate")
    max_len = page.get_by_test_id("stSidebar").get_by_role("spinbutton", name="Max length")
    max_len.fill("512")
    max_len.press("Enter")
    wait_for_app(page)
    nav(page, "Packing")
    no_errors(page)
    plan, ids, sft = library("last_assistant", 512, "truncate")
    assert metric(page, "Trained tokens") == f"{sft.trained_tokens:,}"
    assert metric(page, "Trained targets") == f"{sft.trained_targets:,}"
    assert metric(page, "Examples that train nothing") == f"{sft.lost_completions:,}"
    warning = page.get_by_test_id("stAlertContentWarning").filter(has_text="train nothing")
    expect(warning).to_be_visible()
    expect(page.locator(".js-plotly-plot").nth(2)).to_be_visible(timeout=30_000)
    heat = figure(page, 1)
    assert "Packed rows" in heat["title"]
    overview = figure(page, 2)
    assert overview["data"][-1]["x"] == ["trained"]
    labels = boxes(page, "[data-testid=stMetricLabel]")
    assert not any_overlap(labels)
    shot(page, "finetuning-packing", docs="finetuning-packing")

    nav(page, "Masks")
    no_errors(page)
    expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
    bars = [t for t in figure(page, 0)["data"] if t["mode"] == "lines"]
    assert len(bars) == 6 and any(x is not None for x in bars[0]["x"])
    expect(main(page).get_by_text("Green bars along the top and left edges")).to_be_visible()
    shot(page, "finetuning-masks", docs="finetuning-masks")

    nav(page, "Compare")
    no_errors(page)
    expect(main(page).get_by_text("Trained targets: labels that are not -100")).to_be_visible()

    nav(page, "Export")
    no_errors(page)
    with page.expect_download(timeout=60_000) as info:
        page.get_by_role("button", name="Download packed").click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    arrays = pv.load(path)
    assert arrays.metadata["train_on"] == "last_assistant"
    assert arrays.metadata["chat_template"] == "built-in ChatML"
    assert arrays.metadata["sft"] == json.loads(json.dumps(sft.as_dict()))
