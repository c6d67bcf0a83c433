import re

import pytest
import yaml
from openapi_spec_validator import validate
from rest_framework.test import APIClient

from leadrecord.roles import Role

pytestmark = pytest.mark.django_db


def test_health_is_open_and_checks_the_database():
    response = APIClient().get("/api/v1/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_schema_is_valid_openapi_3(users, api_client_for):
    response = api_client_for(users[Role.MANAGER]).get("/api/v1/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    validate(schema)
    assert "/api/v1/health/" in schema["paths"]
    assert "tokenAuth" in schema["components"]["securitySchemes"]
    assert "MeOutput" in schema["components"]["schemas"]


def test_schema_documents_the_error_answers(users, api_client_for):
    """Callers (and the schema fuzzer) rely on every answer being documented."""
    response = api_client_for(users[Role.MANAGER]).get("/api/v1/schema/?format=json")
    schema = response.json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            if path != "/api/v1/health/":
                assert {"401", "403", "405"} <= codes, (method, path)
            if method in ("post", "patch", "put"):
                # Refused by a field or a rule (a domain error), or too large to read.
                assert {"400", "409", "413"} <= codes, (method, path)
    assert "422" in schema["paths"]["/api/v1/events/"]["post"]["responses"]
    # An erased contact is 410 Gone wherever a contact is named in the path.
    assert "410" in schema["paths"]["/api/v1/contacts/{id}/"]["get"]["responses"]
    assert "410" in schema["paths"]["/api/v1/contacts/{id}/erase/"]["post"]["responses"]


def test_docs_are_served_without_a_cdn(users, client):
    client.force_login(users[Role.MARKETER])
    page = client.get("/api/v1/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources, "the docs page loads its assets"
    assert all(not s.startswith(("http:", "https:", "//")) for s in sources), sources
    for source in sources:
        if source.startswith("/static/"):
            asset = client.get(source)
            asset.close()  # a streamed file; close it rather than leak it
            assert asset.status_code == 200, source


def test_unknown_api_path_gets_the_error_format(users, api_client_for):
    response = api_client_for(users[Role.MANAGER]).get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {
        "type": "client_error",
        "errors": [{"code": "not_found", "detail": "Not found.", "attr": None}],
    }


def test_wrong_method_gets_405_in_the_error_format(users, api_client_for):
    response = api_client_for(users[Role.MANAGER]).delete("/api/v1/me/")
    assert response.status_code == 405
    assert response.json()["errors"][0]["code"] == "method_not_allowed"


def test_pages_send_security_headers(client):
    response = client.get("/login/")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_ledger_api_lists_entries_newest_first(users, api_client_for):
    # Creating the users above wrote nothing to the ledger (factories), so add two.
    from django.core.management import call_command

    call_command("add_user", "alex", role=Role.MARKETER, password="x-y-z-1-2-3")
    call_command("add_user", "blake", role=Role.SALES_REP)
    body = api_client_for(users[Role.MANAGER]).get("/api/v1/ledger/").json()
    assert body["count"] == 2
    assert [row["seq"] for row in body["results"]] == [2, 1]
    assert body["results"][0]["action"] == "user.create"
    assert "after" not in body["results"][0]
