"""Browser fixtures: Debian's Chromium, one server for the session, and every test run at
1280×800 and at 1920×1080 (the test modules skip themselves without playwright or
chromium)."""

from __future__ import annotations

import importlib.util

import pytest

if importlib.util.find_spec("playwright") is not None:
    from browsing import CHROMIUM, CHROMIUM_ARGS, VIEWPORTS, goto, serve

    @pytest.fixture(scope="session")
    def browser_type_launch_args(browser_type_launch_args):
        return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}

    @pytest.fixture(scope="session")
    def browser_context_args(browser_context_args):
        return {**browser_context_args, "accept_downloads": True}

    @pytest.fixture(scope="session")
    def served(browser):
        """One server for the routed tests: (url, process). Its first session opens the
        root URL, so the server runs pages through the router (``app.py``)."""
        with serve() as out:
            first = browser.new_page()
            goto(first, out[0])
            first.close()
            yield out

    @pytest.fixture(scope="session")
    def server(served):
        return served[0]

    @pytest.fixture(params=list(VIEWPORTS))
    def viewport(request):
        return VIEWPORTS[request.param]

    @pytest.fixture
    def page(new_context, viewport):
        return new_context(viewport=viewport).new_page()
