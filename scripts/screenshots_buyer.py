"""Take the README's screenshots of the buyer's side on the demo data set.

The demo form as a buyer sees it, the form's staff page with its embed snippets
(as the demo marketer), and the portal of the demo person who used it. Run
against a server on the demo data whose mail goes to the console (the embedded
default), with its output in a file, so the portal's sign-in link can be read
from it as the person would read it from their mail:

    .venv/bin/python manage.py runserver 127.0.0.1:8000 > /tmp/server.log 2>&1 &
    .venv/bin/python scripts/screenshots_buyer.py http://127.0.0.1:8000 docs/ \\
        --mail-log /tmp/server.log --portal-email <the demo portal user's email>

It writes ``buyer-form.png``, ``buyer-form-embed.png`` and ``buyer-portal.png``.
Kept apart from scripts/screenshots.py (the dashboards) so each can change alone.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PASSWORD = "leadrecord-demo"
WIDTH = 1366
FORM_SLUG = "talk-to-us"  # demo/buyers.py
# The hosted form as a campaign's ad links to it.
FORM_QUERY = "?utm_source=google&utm_medium=cpc&utm_campaign=lead-routing-software"
LINK = re.compile(r"https?://[^\s\"<>]+/me/enter/[^/\s\"<>]+/")


def _form(browser: Browser, base_url: str, folder: Path) -> Path:
    context = browser.new_context(base_url=base_url, viewport={"width": WIDTH, "height": 900})
    page = context.new_page()
    page.goto(f"/f/{FORM_SLUG}/{FORM_QUERY}")
    target = folder / "buyer-form.png"
    page.screenshot(path=str(target), full_page=True)
    context.close()
    return target


def _embed(browser: Browser, base_url: str, folder: Path) -> Path:
    context = browser.new_context(base_url=base_url, viewport={"width": WIDTH, "height": 900})
    page = context.new_page()
    page.goto("/login/")
    page.get_by_label("Username").fill("maria")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base_url}/")
    page.goto("/forms/")
    page.get_by_role("link", name=re.compile("Talk to us")).first.click()
    page.wait_for_load_state()
    target = folder / "buyer-form-embed.png"
    page.screenshot(path=str(target), full_page=True)
    context.close()
    return target


def _link_from(mail_log: Path, after: int, timeout: float = 30) -> str:
    """The newest sign-in link written to the log after byte ``after``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = LINK.findall(mail_log.read_bytes()[after:].decode(errors="replace"))
        if found:
            return str(found[-1])
        time.sleep(0.5)
    raise SystemExit(f"no sign-in link in {mail_log}: is the server's mail on the console?")


def _portal(browser: Browser, base_url: str, folder: Path, email: str, mail_log: Path) -> Path:
    context = browser.new_context(base_url=base_url, viewport={"width": WIDTH, "height": 900})
    page = context.new_page()
    page.goto("/me/")
    start = mail_log.stat().st_size
    page.get_by_label(re.compile("email", re.IGNORECASE)).fill(email)
    page.get_by_role("button").first.click()
    page.wait_for_load_state()
    page.goto(_link_from(mail_log, start))
    page.get_by_role("button").first.click()
    page.wait_for_url(f"{base_url}/me/")
    target = folder / "buyer-portal.png"
    page.screenshot(path=str(target), full_page=True)
    context.close()
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url")
    parser.add_argument("folder", nargs="?", default="docs")
    parser.add_argument("--mail-log", type=Path, required=True)
    parser.add_argument("--portal-email", required=True)
    options = parser.parse_args()
    base_url, folder = options.base_url.rstrip("/"), Path(options.folder)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        print(_form(browser, base_url, folder))
        print(_embed(browser, base_url, folder))
        print(_portal(browser, base_url, folder, options.portal_email, options.mail_log))
        browser.close()


if __name__ == "__main__":
    main()
