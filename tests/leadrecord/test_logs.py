"""Searches leave no email or name in the logs: gunicorn's access log (the repo's
config, as docker-compose runs it) and runserver's request log."""

import logging
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.test import Client
from knox.models import AuthToken

from contacts import services as contact_services
from leadrecord.ledger import Actor
from leadrecord.logs import WithoutQueryStrings, without_query_string
from leadrecord.roles import Role

from ..servers import free_port, gunicorn_process
from ..workers import ROOT, test_database_url

EMAIL = "augusta.logcheck@byron.example"
LAST_NAME = "Byronsdottir"
# Every spelling of the values a log line could hold: as typed and URL-encoded.
TRACES = ("logcheck", LAST_NAME.lower(), urllib.parse.quote(EMAIL).lower())


def _get(url: str, **headers: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 -- loopback
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return response.status, response.read().decode()


def _searches(base: str, *, session: str, token: str, contact_id: int) -> None:
    """Look the person up by email and by name on the page and through the API."""
    page = {"Cookie": f"sessionid={session}"}
    for text in (EMAIL, LAST_NAME):
        query = urllib.parse.urlencode({"search": text})
        status, body = _get(f"{base}/contacts/?{query}", **page)
        assert status == 200 and EMAIL in body  # the search really ran and found them
        status, body = _get(f"{base}/api/v1/contacts/?{query}", Authorization=f"Token {token}")
        assert status == 200 and EMAIL in body
    # The touch form's person search, and the next page, whose Referer holds the query.
    status, _ = _get(f"{base}/touches/?{urllib.parse.urlencode({'q': EMAIL})}", **page)
    assert status == 200
    referer = f"{base}/contacts/?{urllib.parse.urlencode({'search': EMAIL})}"
    status, _ = _get(f"{base}/contacts/{contact_id}/", Referer=referer, **page)
    assert status == 200


@pytest.fixture
def searcher(users) -> tuple[str, str, int]:
    """A signed-in marketer's session, an integration's token and the person to find."""
    person, _ = contact_services.contact_create(
        email=EMAIL,
        first_name="Augusta",
        last_name=LAST_NAME,
        organization=contact_services.OrganizationInput(name="Byron", domain="byron.example"),
        actor=Actor.system("test"),
    )
    browser = Client()
    browser.force_login(users[Role.MARKETER])
    _, token = AuthToken.objects.create(user=users[Role.INTEGRATION])
    return browser.cookies["sessionid"].value, token, person.pk


def _assert_clean(log: str, *, expected_lines: tuple[str, ...]) -> None:
    for trace in TRACES:
        assert trace not in log.lower(), f"{trace!r} in the log:\n{log}"
    for line in expected_lines:
        assert line in log, f"{line!r} not logged:\n{log}"  # the log is on and complete


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_gunicorn_access_log_holds_no_searched_email_or_name(searcher):
    session, token, contact_id = searcher
    with tempfile.TemporaryFile() as log:
        with gunicorn_process(workers=1, log=log) as server:
            _searches(server.url, session=session, token=token, contact_id=contact_id)
        log.seek(0)
        text = log.read().decode()
    _assert_clean(
        text,
        expected_lines=(
            '"GET /contacts/ HTTP/1.1" 200',
            '"GET /api/v1/contacts/ HTTP/1.1" 200',
            '"GET /touches/ HTTP/1.1" 200',
            f'"GET /contacts/{contact_id}/ HTTP/1.1" 200',
        ),
    )


@contextmanager
def runserver(log: Path) -> Iterator[str]:
    """``manage.py runserver`` (what ``make run`` serves) on a free port; its output to ``log``."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": test_database_url(), "CONN_MAX_AGE": "0"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "runserver",
                "--noreload",
                "--skip-checks",
                f"127.0.0.1:{port}",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=out,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(url + "/api/v1/health/")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("runserver did not come up") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_runserver_request_log_holds_no_searched_email_or_name(searcher, tmp_path):
    session, token, contact_id = searcher
    log = tmp_path / "runserver.log"
    expected = (
        '"GET /contacts/ HTTP/1.1" 200',
        '"GET /api/v1/contacts/ HTTP/1.1" 200',
        f'"GET /contacts/{contact_id}/ HTTP/1.1" 200',
    )
    with runserver(log) as url:
        _searches(url, session=session, token=token, contact_id=contact_id)
        # runserver writes a request's line after its answer is sent: on a busy machine
        # the last one may still be on its way when the client has the answer.
        deadline = time.monotonic() + 15
        while not all(line in log.read_text() for line in expected):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
    _assert_clean(log.read_text(), expected_lines=expected)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("GET /contacts/?search=a%40b.example HTTP/1.1", "GET /contacts/ HTTP/1.1"),
        ("/api/v1/contacts/?search=Ada+Lovelace&page=2", "/api/v1/contacts/"),
        ('"GET /touches/?q=ada@b.example HTTP/1.1" 200', '"GET /touches/ HTTP/1.1" 200'),
        ("GET /contacts/ HTTP/1.1", "GET /contacts/ HTTP/1.1"),
        ("no request here?", "no request here?"),
    ],
)
def test_query_strings_are_cut_from_request_lines(text, expected):
    assert without_query_string(text) == expected


def test_the_filter_cleans_a_records_arguments_and_keeps_the_record():
    record = logging.LogRecord(
        "gunicorn.error",
        logging.ERROR,
        __file__,
        1,
        "Error handling request %s",
        ("/contacts/?search=ada@b.example",),
        None,
    )
    assert WithoutQueryStrings().filter(record)
    assert record.getMessage() == "Error handling request /contacts/"


def test_gunicorn_config_logs_paths_not_request_lines():
    from gunicorn.config import Config

    from leadrecord import gunicorn_config

    format_ = gunicorn_config.access_log_format
    assert "%(U)s" in format_
    assert "%(r)s" not in format_ and "%(q)s" not in format_ and "%(f)s" not in format_
    config = Config()
    config.set("accesslog", "-")
    logger = gunicorn_config.QueryFreeLogger(config)
    assert any(isinstance(f, WithoutQueryStrings) for f in logger.error_log.filters)
