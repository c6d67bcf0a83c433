"""Browser-facing defences: CSRF on every form, production cookies and headers, the
content security policy, login throttling, and no user enumeration.

The pages come from the same walk of the URL resolver as the security matrix,
so a page added later is checked too.
"""

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.hashers import get_hasher
from django.test import Client
from django.urls import get_resolver

from leadrecord.roles import Role

from ..factories import TEST_PASSWORD, UserFactory
from .test_matrix import ENDPOINTS, PUBLIC, expected_roles, url_for

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore:PluginImportFixer.find_spec:ImportWarning"),
]

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
PAGES = [endpoint for endpoint in ENDPOINTS if not endpoint.api]
FORM_PAGES = [endpoint for endpoint in PAGES if "POST" in endpoint.methods]
# The buyer's public form and visit endpoints take posts from other sites' plain HTML
# forms and scripts, which cannot carry this site's token; they read no session, and
# a signed timing field, a honeypot and rate limits guard them (docs/buyer-side.md).
# The form pages may also be framed by the company's own site.
CROSS_SITE_PUBLIC = {"f/<slug:slug>/", "f/<slug:slug>/embed/", "c.js", "c.gif", "c/"}
FRAMEABLE = {"f/<slug:slug>/", "f/<slug:slug>/embed/"}


def _first_allowed_role(endpoint, method: str) -> str | None:
    allowed = expected_roles(endpoint, method)
    if allowed == PUBLIC or not allowed:
        return None
    # A person's role, in a fixed order (the import job belongs to the marketer).
    for role in (Role.MARKETER, Role.MANAGER, Role.SALES_REP, Role.PRIVACY_OFFICER):
        if role in allowed:
            return role
    return None


# --- CSRF ------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", FORM_PAGES, ids=[e.route or "home" for e in FORM_PAGES])
def test_a_post_without_the_csrf_token_is_refused(endpoint, world):
    if endpoint.route in CROSS_SITE_PUBLIC:
        pytest.skip("posted from other sites: guarded otherwise (docs/buyer-side.md)")
    role = _first_allowed_role(endpoint, "POST")
    client = Client(enforce_csrf_checks=True)
    if role:
        client.force_login(world.users[role])
    response = client.post(url_for(endpoint, world), {"anything": "at all"})
    assert response.status_code == 403
    assert b"CSRF" in response.content


@pytest.mark.parametrize("endpoint", PAGES, ids=[e.route or "home" for e in PAGES])
def test_every_form_on_a_page_carries_the_csrf_token(endpoint, world):
    if "GET" not in endpoint.methods:
        pytest.skip("no page to read")
    if endpoint.route in CROSS_SITE_PUBLIC:
        pytest.skip("posted from other sites: guarded otherwise (docs/buyer-side.md)")
    role = _first_allowed_role(endpoint, "GET")
    client = Client()
    if role:
        client.force_login(world.users[role])
    response = client.get(url_for(endpoint, world))
    html = response.content.decode("utf-8", "replace")
    for form in re.findall(r"<form\b.*?</form>", html, flags=re.S | re.I):
        opening = form[: form.index(">") + 1]
        if re.search(r"method\s*=\s*[\"']?post", opening, flags=re.I):
            assert "csrfmiddlewaretoken" in form, f"{endpoint.route}: {opening}"


def test_the_api_with_a_session_needs_the_csrf_token(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users[Role.MANAGER])
    response = client.post(
        "/api/v1/contacts/", {"email": "csrf@example.com"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["errors"][0]["detail"]


def test_the_login_form_needs_the_csrf_token():
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": "someone", "password": "x"})
    assert response.status_code == 403


# --- production settings: cookies and headers --------------------------------------

_PRODUCTION_PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
secure = Client().get("/login/", secure=True)
plain = Client().get("/login/")
cookie = secure.cookies["csrftoken"]
print(json.dumps({
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
    "session_cookie_httponly": settings.SESSION_COOKIE_HTTPONLY,
    "session_cookie_samesite": settings.SESSION_COOKIE_SAMESITE,
    "csrf_cookie_secure": settings.CSRF_COOKIE_SECURE,
    "csrf_cookie_flag": bool(cookie["secure"]),
    "status": secure.status_code,
    "plain_status": plain.status_code,
    "plain_location": plain.headers.get("Location", ""),
    "headers": dict(secure.headers),
}))
"""


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The login page as production settings serve it (DEBUG off, nothing overridden)."""
    keep = ("PATH", "HOME", "LANG", "VIRTUAL_ENV", "PYTHONPATH")
    env = {name: value for name, value in os.environ.items() if name in keep}
    env.update(
        DJANGO_SETTINGS_MODULE="leadrecord.settings",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="testserver",
        DATABASE_URL=f"sqlite:///{tmp_path_factory.mktemp('prod') / 'db.sqlite3'}",
    )
    result = subprocess.run(
        [sys.executable, "-c", _PRODUCTION_PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_cookies_are_secure(production):
    assert production["session_cookie_secure"] is True
    assert production["session_cookie_httponly"] is True
    assert production["session_cookie_samesite"] in ("Lax", "Strict")
    assert production["csrf_cookie_secure"] is True
    assert production["csrf_cookie_flag"] is True


def test_production_sends_the_security_headers(production):
    headers = {name.lower(): value for name, value in production["headers"].items()}
    assert production["status"] == 200
    hsts = headers["strict-transport-security"]
    assert int(re.search(r"max-age=(\d+)", hsts).group(1)) >= 31_536_000  # type: ignore[union-attr]
    assert "includeSubDomains" in hsts
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] in (
        "same-origin",
        "strict-origin-when-cross-origin",
        "no-referrer",
    )
    assert headers["x-frame-options"] == "DENY"
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert "default-src 'self'" in headers["content-security-policy"]


def test_production_sends_plain_http_to_https(production):
    assert production["plain_status"] == 301
    assert str(production["plain_location"]).startswith("https://")


# --- content security policy -------------------------------------------------------


def _directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            parsed[words[0]] = words[1:]
    return parsed


@pytest.mark.parametrize("endpoint", PAGES, ids=[e.route or "home" for e in PAGES])
def test_every_page_has_a_content_security_policy(endpoint, world):
    if "GET" not in endpoint.methods:
        pytest.skip("no page to read")
    role = _first_allowed_role(endpoint, "GET")
    client = Client()
    if role:
        client.force_login(world.users[role])
    response = client.get(url_for(endpoint, world))
    policy = _directives(response.headers["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]  # no inline or evaluated scripts
    assert policy["object-src"] == ["'none'"]
    if endpoint.route in FRAMEABLE:
        assert policy["frame-ancestors"] == ["*"]  # BUYER_FRAME_ANCESTORS
    else:
        assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]


def test_the_api_docs_page_runs_under_the_policy(world):
    client = Client()
    client.force_login(world.users[Role.MANAGER])
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    # Swagger UI's own script comes from a file (the split view), not inline.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>\s*\S", html)
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_templates_have_no_inline_scripts_or_event_handlers():
    """script-src 'self' would block them: pages must work without."""
    offenders = []
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text, flags=re.I):
            offenders.append(f"{template.relative_to(ROOT)}: inline <script>")
        if re.search(r"\son[a-z]+\s*=", text, flags=re.I):
            offenders.append(f"{template.relative_to(ROOT)}: an on* event handler")
        if re.search(r"(href|src|action)\s*=\s*[\"']?javascript:", text, flags=re.I):
            offenders.append(f"{template.relative_to(ROOT)}: a javascript: URL")
    assert not offenders, "\n".join(offenders)


# --- login throttling and user enumeration --------------------------------------------


def _login(client: Client, username: str, password: str, address: str = "10.1.2.3"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_a_locked_out_known_user_and_an_unknown_one_look_the_same(client, settings):
    UserFactory(username="known-person", role=Role.MARKETER)
    answers = {}
    for username in ("known-person", "nobody-of-that-name"):
        for _ in range(settings.AXES_FAILURE_LIMIT):
            response = _login(client, username, "wrong-password")
        answers[username] = (response.status_code, response.content)
        # Locked out: even the right password is refused.
        assert _login(client, username, TEST_PASSWORD).status_code == 429
    assert answers["known-person"] == answers["nobody-of-that-name"]
    assert answers["known-person"][0] == 429
    assert AccessAttempt.objects.filter(username="known-person").exists()


def test_the_lockout_ends_when_the_attempts_are_forgotten(client, settings):
    UserFactory(username="known-person", role=Role.MARKETER)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, "known-person", "wrong-password")
    assert _login(client, "known-person", TEST_PASSWORD).status_code == 429
    AccessAttempt.objects.all().delete()  # what the cool-off (or axes_reset) does
    assert _login(client, "known-person", TEST_PASSWORD).status_code == 302


def test_a_wrong_password_and_an_unknown_user_take_the_same_path(client):
    """Same answer, and the password hasher runs once either way (no timing tell)."""
    UserFactory(username="known-person", role=Role.MARKETER)
    hasher = type(get_hasher())
    answers: dict[str, tuple[int, int]] = {}
    for username in ("known-person", "nobody-of-that-name"):
        with mock.patch.object(hasher, "encode", autospec=True, side_effect=hasher.encode) as spy:
            response = _login(client, username, "wrong-password", address=f"10.9.{len(answers)}.1")
        answers[username] = (response.status_code, spy.call_count)
        assert b"Please enter a correct username and password" in response.content
    assert answers["known-person"] == answers["nobody-of-that-name"] == (200, 1)


def test_there_is_no_password_reset_flow_to_enumerate_users(client):
    names = {
        name for name in get_resolver().reverse_dict if isinstance(name, str) and "password" in name
    }
    assert not names, f"a password flow exists now; test it for enumeration: {names}"
    for path in ("/password_reset/", "/accounts/password_reset/", "/password-reset/"):
        assert client.get(path).status_code == 404
        assert client.post(path, {"email": "someone@example.com"}).status_code == 404
