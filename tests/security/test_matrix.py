"""The security matrix: every URL the project routes, as every role and anonymously.

URLs come from walking the URL resolver, so an endpoint or page added later is
in the matrix at once; a URL no rule below covers fails ``test_every_url_has_a_rule``
until someone states who may call it. The API rules follow docs/api.md, "Who may call
what" (where it is silent, the comment says what the code chose); the page rules
follow the roles each page was built for.

For every call: allowed roles get neither 401 nor 403 (a 400 for the empty body
is fine), other roles get 403, anonymous callers get 401 (API) or the login page
(pages), nobody gets a 5xx, and no response shows a disclosure value outside the
caller's audiences or a withdrawn one (``world.person`` carries a distinctive
value per audience).
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from leadrecord.roles import Role

from .conftest import (
    AUDIENCES_BY_ROLE,
    SECRET_BY_AUDIENCE,
    WITHDRAWN_SECRET,
    World,
    path_sample,
    secrets_hidden_from,
)

pytestmark = [
    pytest.mark.django_db,
    # pygal (the report charts) puts an old-style import hook on sys.meta_path;
    # every import after it warns. Not ours to fix here.
    pytest.mark.filterwarnings("ignore:PluginImportFixer.find_spec:ImportWarning"),
]

M, S, MGR, PRIV, INT = (
    Role.MARKETER,
    Role.SALES_REP,
    Role.MANAGER,
    Role.PRIVACY_OFFICER,
    Role.INTEGRATION,
)
EVERY_ROLE = frozenset(Role.values)
PUBLIC = "public"  # anonymous callers too
READ = frozenset({"GET"})
WRITE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ANY_METHOD = READ | WRITE
CALLERS: list[str | None] = [None, *Role.values]


@dataclass(frozen=True)
class Rule:
    route: str  # a regex over the route as Django writes it (``contacts/<id:pk>/``)
    methods: frozenset[str]
    allowed: frozenset[str] | str

    def matches(self, route: str, method: str) -> bool:
        return method in self.methods and re.fullmatch(self.route, route) is not None


def rule(route: str, methods: frozenset[str], *allowed: str) -> Rule:
    return Rule(route, methods, PUBLIC if allowed == (PUBLIC,) else frozenset(allowed))


# Routes relative to /api/v1/; the first matching rule decides.
API_RULES = [
    rule(r"health/", ANY_METHOD, PUBLIC),
    rule(r"me/|schema/|docs/", ANY_METHOD, *EVERY_ROLE),
    # Not in docs/api.md's table: the record is for managers and the privacy officer,
    # as its page is.
    rule(r"ledger/", ANY_METHOD, MGR, PRIV),
    rule(r"ledger/checkpoints/latest/", READ, MGR, PRIV, INT),
    rule(r"ledger/checkpoints/latest/", WRITE),  # read-only: signed by the command
    rule(r"contacts/merge/", ANY_METHOD, M, S, MGR),
    rule(r"contacts/<id:pk>/(erase|export)/", ANY_METHOD, PRIV),
    # Touches are read like contacts (docs/api.md is silent; the code says so).
    rule(r"(contacts|touches)/.*", READ, *EVERY_ROLE),
    rule(r"(contacts|touches|events|disclosures)/.*", WRITE, M, S, MGR, INT),
    # Reading campaigns and channels: every role (docs/api.md is silent).
    rule(r"channels/.*", READ, *EVERY_ROLE),
    rule(r"channels/.*", WRITE, MGR),
    rule(r"campaigns/", READ, *EVERY_ROLE),
    rule(r"campaigns/", WRITE, M, MGR),
    rule(r"(rulesets|targets|attribution)/.*", READ, M, S, MGR),
    rule(r"(rulesets|targets|attribution)/.*", WRITE, MGR),
    rule(r"handoffs/<id:pk>/(accept|reject)/", WRITE, S, MGR),
    # Reading handoffs: whoever may create or decide them (docs/api.md is silent).
    rule(r"handoffs/.*", READ, M, S, MGR, INT),
    rule(r"handoffs/.*", WRITE, M, MGR, INT),
    rule(r"deals/<id:pk>/override-source/", WRITE, S, MGR),
    rule(r"deals/.*", READ, M, S, MGR, INT),
    rule(r"deals/.*", WRITE, S, MGR, INT),
    rule(r"reports/.*", READ, M, S, MGR),
    # Forms are marketing's: marketers and managers read and publish them.
    rule(r"forms/.*", ANY_METHOD, M, MGR),
    rule(r"webhooks/.*", ANY_METHOD, MGR, INT),
]

# Page routes; integration users are API clients and have no pages but home.
HUMANS = (M, S, MGR, PRIV)
PAGE_RULES = [
    rule(r"login/|logout/", ANY_METHOD, PUBLIC),
    # The buyer's public pages: no login, and no staff session is used.
    rule(r"f/<slug:slug>/(embed/)?", ANY_METHOD, PUBLIC),
    # The person's portal: anyone may ask for a link; the rest is the signed-in
    # person's own record (a staff session is not one), else back to the entry.
    rule(r"me/.*", ANY_METHOD, PUBLIC),
    rule(r"c\.js|c\.gif|c/", ANY_METHOD, PUBLIC),  # visits: counted, never refused by role
    rule(r"erasure-requests/", ANY_METHOD, PRIV),
    rule(r"forms/.*", ANY_METHOD, M, MGR),
    rule(r"", ANY_METHOD, *EVERY_ROLE),
    rule(r"guide/", ANY_METHOD, *EVERY_ROLE),
    rule(r"record/", ANY_METHOD, MGR, PRIV),
    rule(r"contacts/<id:pk>/(erase|export)/", ANY_METHOD, PRIV),
    rule(r"contacts/<id:pk>/handoff/", ANY_METHOD, M, MGR),
    rule(
        r"contacts/new/|contacts/<id:pk>/(consents/new|disclosures/new|merge|organization)/"
        r"|disclosures/<id:pk>/withdraw/",
        ANY_METHOD,
        M,
        S,
        MGR,
    ),
    rule(r"contacts/|contacts/<id:pk>/", ANY_METHOD, *HUMANS),
    # Organizations are read like contacts; their deals and revenue only by M, S, MGR.
    rule(r"organizations/|organizations/<id:pk>/", ANY_METHOD, *HUMANS),
    # The file's touches are recorded as the uploader's: only they may start it.
    rule(r"touches/import/<id:pk>/start/", WRITE, M),
    rule(r"channels/", WRITE, MGR),  # managers add channels, as in the API
    rule(r"touches/.*|campaigns/|channels/", ANY_METHOD, M, MGR),
    rule(r"handoffs/returned/", ANY_METHOD, M, MGR),
    rule(r"handoffs/.*|deals/.*", ANY_METHOD, S, MGR),
    rule(r"rules/.*", ANY_METHOD, MGR),
    rule(r"reports/manager/", ANY_METHOD, MGR),
    rule(r"reports/attribution/recompute/", ANY_METHOD, MGR),  # starts a run, as the API
    rule(r"reports/marketing/", ANY_METHOD, M, MGR),
    rule(r"reports/sales/", ANY_METHOD, S, MGR),
    rule(r"reports/.*", ANY_METHOD, M, S, MGR),
    rule(r"webhooks/.*", ANY_METHOD, MGR),
]

API_PREFIX = "api/v1/"
SUBJECT_ACCESS_EXPORT = r"contacts/<id:pk>/export/"
# Sample values for parameters that name no object (see conftest.path_sample).
EXTRA_SAMPLES = {"slug": "qualified-not-handed-off", "token": "not-a-token", "seq": 1}


@dataclass(frozen=True)
class Endpoint:
    route: str  # without the API prefix for API routes
    api: bool
    methods: tuple[str, ...]

    @property
    def rules(self) -> list[Rule]:
        return API_RULES if self.api else PAGE_RULES


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, Callable[..., Any]]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def _methods(callback: Callable[..., Any]) -> tuple[str, ...]:
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view_class is None:  # a function view: try both
        return ("GET", "POST")
    names = ("get", "post", "put", "patch", "delete")
    return tuple(name.upper() for name in names if hasattr(view_class, name))


def endpoints() -> list[Endpoint]:
    found: dict[tuple[str, bool], Endpoint] = {}
    for route, callback in _walk(get_resolver().url_patterns):
        if route.startswith("admin/"):
            continue  # Django's admin: staff only, see test_admin_is_for_staff_only
        api = route.startswith(API_PREFIX)
        key = (route.removeprefix(API_PREFIX) if api else route, api)
        found.setdefault(key, Endpoint(key[0], api, _methods(callback)))
    return sorted(found.values(), key=lambda endpoint: (endpoint.api, endpoint.route))


ENDPOINTS = endpoints()
CASES = [(endpoint, method) for endpoint in ENDPOINTS for method in endpoint.methods]


def _case_id(case: tuple[Endpoint, str]) -> str:
    endpoint, method = case
    return f"{method} {'/api/v1/' if endpoint.api else '/'}{endpoint.route}"


def expected_roles(endpoint: Endpoint, method: str) -> frozenset[str] | str | None:
    for candidate in endpoint.rules:
        if candidate.matches(endpoint.route, method):
            return candidate.allowed
    return None


def url_for(endpoint: Endpoint, world: World) -> str:
    values: dict[str, object] = {**EXTRA_SAMPLES, **path_sample(endpoint.route, world)}

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in values, f"no sample value for <{name}> in {endpoint.route}"
        return str(values[name])

    path = re.sub(r"<(?:\w+:)?(\w+)>", fill, endpoint.route)
    return "/" + (API_PREFIX if endpoint.api else "") + path


def _client(world: World, role: str | None, api: bool) -> Client:
    if api:
        api_client = APIClient()
        if role:
            api_client.credentials(HTTP_AUTHORIZATION=f"Token {world.tokens[role]}")
        return api_client
    client = Client()
    if role:
        client.force_login(world.users[role])
    return client


def _call(client: Client, method: str, url: str, api: bool) -> Any:
    if method == "GET":
        return client.get(url)
    if api:
        return client.generic(method, url, data="{}", content_type="application/json")
    return client.generic(method, url, data="", content_type="application/x-www-form-urlencoded")


def test_every_url_has_a_rule():
    missing = [
        _case_id((endpoint, method))
        for endpoint, method in CASES
        if expected_roles(endpoint, method) is None
    ]
    assert not missing, "Say who may call these (API_RULES or PAGE_RULES):\n" + "\n".join(missing)


def test_the_walk_finds_the_known_urls():
    ids = {_case_id(case) for case in CASES}
    for known in (
        "GET /api/v1/contacts/<id:pk>/",
        "POST /api/v1/handoffs/<id:pk>/accept/",
        "GET /api/v1/schema/",
        "GET /contacts/<id:pk>/",
        "POST /rules/<id:pk>/activate/",
    ):
        assert known in ids


def _body(response: Any) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode("utf-8", "replace")
    return response.content.decode("utf-8", "replace")


@pytest.mark.parametrize("case", CASES, ids=[_case_id(case) for case in CASES])
def test_who_may_call_it(case, world):
    endpoint, method = case
    allowed = expected_roles(endpoint, method)
    if allowed is None:
        pytest.skip("no rule: see test_every_url_has_a_rule")
    url = url_for(endpoint, world)
    wrong: list[str] = []
    # Anonymous first, then the roles that must be refused, so that an allowed
    # write (an erasure, say) cannot change what the refusals are checked against.
    callers = sorted(CALLERS, key=lambda role: role is not None and role in allowed)
    for role in callers:
        response = _call(_client(world, role, endpoint.api), method, url, endpoint.api)
        status = response.status_code
        body = _body(response)
        who = role or "anonymous"
        if status >= 500:
            wrong.append(f"{who}: {status}")
        elif allowed == PUBLIC or (role is not None and role in allowed):
            if status in (401, 403):
                wrong.append(f"{who}: {status}, expected to be let in")
        elif role is None and endpoint.api:
            if status != 401:
                wrong.append(f"{who}: {status}, expected 401")
        elif role is None:
            if status != 302 or not response.url.startswith("/login/"):
                wrong.append(f"{who}: {status}, expected the login page")
        elif status != 403:
            wrong.append(f"{who}: {status}, expected 403")
        hidden = secrets_hidden_from(role)
        if re.fullmatch(SUBJECT_ACCESS_EXPORT, endpoint.route):
            # The person's own copy of what is held about them (subject access):
            # withdrawn disclosures are still held, so they are in it.
            hidden = [secret for secret in hidden if secret != WITHDRAWN_SECRET]
        leaked = [secret for secret in hidden if secret in body]
        if leaked:
            wrong.append(f"{who}: shown {leaked}")
    assert not wrong, f"{method} {url}:\n" + "\n".join(wrong)


def test_allowed_readers_see_their_audiences(world):
    """The leak checks must not pass because nothing is shown at all."""
    for role in Role.values:
        for url, api in (
            (f"/api/v1/contacts/{world.person.pk}/", True),
            (f"/contacts/{world.person.pk}/", False),
        ):
            if not api and role == INT:
                continue  # no pages for integrations
            body = _body(_call(_client(world, role, api), "GET", url, api))
            shown = {audience for audience, value in SECRET_BY_AUDIENCE.items() if value in body}
            assert shown == AUDIENCES_BY_ROLE[role], (role, url)


@pytest.mark.parametrize("role", Role.values)
def test_a_hidden_value_finds_no_one(role, world):
    """Searching for a value outside the caller's audiences must not find its owner."""
    for secret in secrets_hidden_from(role):
        api = _call(_client(world, role, True), "GET", f"/api/v1/contacts/?search={secret}", True)
        assert api.status_code == 200
        assert api.json()["count"] == 0, (role, secret)
        if role != INT:
            page = _call(_client(world, role, False), "GET", f"/contacts/?search={secret}", False)
            assert page.status_code == 200
            assert world.person.email.encode() not in page.content, (role, secret)


def test_admin_is_for_staff_only(world):
    for role in CALLERS:
        response = _client(world, role, api=False).get("/admin/")
        assert response.status_code == 302, role
        assert response.headers["Location"].startswith("/admin/login/"), role
