"""Two browser sessions at once against one server each get their own data, and the
upload size limit holds (issue 9). Each test runs at 1280×800 and 1920×1080."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("playwright")
from browsing import CHROMIUM, goto, metric, nav, no_errors, wait_for_app  # noqa: E402
from playwright.sync_api import Page, expect  # noqa: E402

import packviz as pv  # noqa: E402

pytestmark = pytest.mark.browser
if not Path(CHROMIUM).exists():
    pytest.skip(
        "Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True
    )


def _upload(page: Page, path: Path) -> None:
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(path))


def test_two_sessions_upload_and_export_their_own_corpora(
    new_context, viewport, server: str, tmp_path: Path
):
    files = {}
    for name, n, word in (("alpha.txt", 30, "alpha"), ("beta.txt", 45, "beta")):
        files[name] = tmp_path / name
        files[name].write_text(
            "\n\n".join(
                f"{word} paragraph {i}. " + f"{word} words " * (2 + i % 7) for i in range(n)
            )
        )
    pages = {name: new_context(viewport=viewport).new_page() for name in files}
    for page in pages.values():
        goto(page, server, "corpus", "corpus_source=Upload")
    for name, page in pages.items():  # both uploads in flight together
        _upload(page, files[name])
    for page in pages.values():
        wait_for_app(page)
    assert metric(pages["alpha.txt"], "Documents") == "30"
    assert metric(pages["beta.txt"], "Documents") == "45"
    for page in pages.values():
        nav(page, "Export")
    downloads = {}
    for name, page in pages.items():
        wait_for_app(page)
        button = page.get_by_role("button", name="Download packed")
        expect(button).to_be_enabled()
        with page.expect_download(timeout=120_000) as info:
            button.click()
        downloads[name] = info
    for name, info in downloads.items():
        path = tmp_path / f"{name}-{info.value.suggested_filename}"
        info.value.save_as(path)
        arrays = pv.load(path)
        assert arrays.metadata["corpus"] == f"upload: {name}"
        assert int(arrays.doc_ids.max()) + 1 == (30 if name == "alpha.txt" else 45)
    for page in pages.values():
        no_errors(page)


def test_the_upload_size_limit_holds(page: Page, server: str, tmp_path: Path):
    big = tmp_path / "big.txt"
    with open(big, "wb") as f:  # 101 MB, one over server.maxUploadSize
        f.truncate(101 * 1024 * 1024)
    goto(page, server, "corpus", "corpus_source=Upload")
    _upload(page, big)
    wait_for_app(page)
    expect(page.get_by_text("File must be 100.0MB or smaller.", exact=False)).to_be_visible()
    expect(page.get_by_text("No files uploaded yet", exact=False)).to_be_visible()
    small = tmp_path / "small.txt"
    small.write_text("\n\n".join(f"fine paragraph {i}" for i in range(10)))
    _upload(page, small)
    wait_for_app(page)
    assert metric(page, "Documents") == "10"
