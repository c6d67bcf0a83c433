"""Retake the README's screenshots: each role's dashboard at 1,366 px and at 390 px.

Run against a server on the demo data set (``make run``, or ``manage.py seed_demo`` and
``runserver``), with Debian's Chromium:

    .venv/bin/python scripts/screenshots.py http://127.0.0.1:8000 docs/

It writes ``dashboard-<role>.png`` (1,366 px wide) and ``dashboard-<role>-390.png``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PASSWORD = "leadrecord-demo"
# role in the file name, demo user, dashboard address
DASHBOARDS = [
    ("manager", "morgan", "/reports/manager/"),
    ("marketer", "maria", "/reports/marketing/"),
    ("sales", "sam", "/reports/sales/"),
]
WIDTHS = {"": 1366, "-390": 390}


def main(base_url: str, folder: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for role, username, path in DASHBOARDS:
            for suffix, width in WIDTHS.items():
                context = browser.new_context(
                    base_url=base_url, viewport={"width": width, "height": 900}
                )
                page = context.new_page()
                page.goto("/login/")
                page.get_by_label("Username").fill(username)
                page.get_by_label("Password").fill(PASSWORD)
                page.get_by_role("button", name="Log in").click()
                page.wait_for_url(f"{base_url}/")
                page.goto(path)
                target = folder / f"dashboard-{role}{suffix}.png"
                page.screenshot(path=str(target), full_page=True)
                print(target)
                context.close()
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1].rstrip("/"), Path(sys.argv[2] if len(sys.argv) > 2 else "docs"))
