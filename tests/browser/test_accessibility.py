"""Every page, as every role that may open it, checked by axe-core and at a phone's width.

One browser and one walk per role over the demo data set: each page the role may open
(the security matrix's page rules say which) is loaded once at 390 px, axe-core runs on
it, and the page may not scroll sideways. A serious or critical violation fails the
walk, and so does a page wider than the phone; all of them are listed at the end.
"""

import re
from collections.abc import Iterator
from io import StringIO

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import override_settings
from playwright.sync_api import Error as PlaywrightError

from contacts.models import Contact, Disclosure
from handoff.models import Deal, Handoff, Ruleset
from leadrecord.roles import Role
from reports.models import AttributionRun
from reports.views_lists import LISTS

from ..security.test_matrix import ENDPOINTS, PAGE_RULES, PUBLIC

pytestmark = pytest.mark.filterwarnings("ignore:PluginImportFixer.find_spec:ImportWarning")

PHONE = {"width": 390, "height": 844}
DEMO_PASSWORD = "leadrecord-demo"
DEMO_USERS = {
    Role.MARKETER: "maria",
    Role.SALES_REP: "sam",
    Role.MANAGER: "morgan",
    Role.PRIVACY_OFFICER: "priya",
}
BLOCKING = {"serious", "critical"}
# Routes that only take a POST: their GET is the friendly 405 page, checked once per role
# like any other page.
SAMPLES_FOR = {
    "contacts": lambda: Contact.objects.filter(erased_at__isnull=True).order_by("pk").first(),
    "deals": lambda: Deal.objects.order_by("pk").first(),
    "handoffs": lambda: Handoff.objects.order_by("pk").first(),
    "rules": lambda: Ruleset.objects.order_by("-pk").first(),
    "runs": lambda: AttributionRun.objects.order_by("pk").first(),
    "disclosures": lambda: Disclosure.objects.order_by("pk").first(),
}


@pytest.fixture
def demo(transactional_db: None) -> Iterator[None]:
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        call_command("seed_demo", contacts=30, stdout=StringIO())
        yield


def _allowed(route: str, role: str) -> bool:
    for rule in PAGE_RULES:
        if rule.matches(route, "GET"):
            return rule.allowed == PUBLIC or role in rule.allowed
    return False


def _paths(role: str) -> list[str]:
    """A URL for each page route the role may open, with real objects of the demo."""
    paths: list[str] = []
    for endpoint in ENDPOINTS:
        route = endpoint.route
        if endpoint.api or "GET" not in endpoint.methods or not _allowed(route, role):
            continue
        if route in ("login/", "logout/") or route.endswith(".csv"):
            continue  # not pages of the signed-in product
        if "<slug:slug>" in route:
            paths += ["/" + route.replace("<slug:slug>", slug) for slug in LISTS]
            continue
        match = re.search(r"([\w-]+)/<id:pk>", route)
        if match:
            sample = SAMPLES_FOR.get(match.group(1), lambda: None)()
            if sample is None:
                continue  # the demo has none (an import job): covered by its own tests
            route = route.replace("<id:pk>", str(sample.pk))
        paths.append("/" + route)
    return paths


def _log_in(page, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/$"))


def test_every_page_passes_axe_and_fits_a_phone_for_every_role(browser, live_server, demo):
    axe = Axe()
    problems: list[str] = []
    visited = 0
    for role, username in DEMO_USERS.items():
        assert User.objects.filter(username=username).exists()
        context = browser.new_context(base_url=live_server.url, viewport=PHONE)
        page = context.new_page()
        page.set_default_timeout(15_000)
        _log_in(page, username)
        for path in _paths(role):
            visited += 1
            try:
                response = page.goto(path)
            except PlaywrightError as error:  # an empty error page, say
                problems.append(f"{role} {path}: {error.message.splitlines()[0]}")
                continue
            status = response.status if response else 0
            if status >= 500 or status in (401, 403):
                problems.append(f"{role} {path}: status {status}")
                continue
            if "text/html" not in (response.headers.get("content-type", "") if response else ""):
                continue  # a script or an image (the visit counter's), not a page
            wide = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            if wide[0] > wide[1]:
                problems.append(f"{role} {path}: {wide[0]} px wide at {wide[1]} px")
            results = axe.run(page)
            for violation in results.response["violations"]:
                if violation["impact"] in BLOCKING:
                    targets = [node["target"] for node in violation["nodes"]][:3]
                    problems.append(
                        f"{role} {path}: {violation['impact']} {violation['id']} at {targets}"
                    )
        context.close()
    assert visited > 40
    assert not problems, "\n".join(problems)
