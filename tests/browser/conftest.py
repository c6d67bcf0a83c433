"""Real headless Chromium (Debian's), driven by Playwright; never a downloaded browser."""

import os
from collections.abc import Iterator

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",  # the suite may run as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # Nothing outside is reachable: keep Chromium from trying.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The hook sees the whole session's items: mark only this folder's.
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here + os.sep):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import expect, sync_playwright

    # The suite's workers share the machine's cores with Chromium and the servers: an
    # assertion waits as long as an action does before it calls the page wrong.
    expect.set_options(timeout=15_000)

    # Playwright's sync API runs an event loop in this thread; the ORM calls
    # the tests make between browser steps are still synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    executable = os.environ.get("LEADRECORD_TEST_CHROMIUM", "/usr/bin/chromium")
    if not os.path.exists(executable):
        pytest.fail(f"no Chromium at {executable} (make test installs Debian's chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: object, live_server: object) -> Iterator[object]:
    context = browser.new_context(base_url=live_server.url)  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
