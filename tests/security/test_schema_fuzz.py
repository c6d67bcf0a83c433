"""Schema fuzzing: every operation in the live OpenAPI schema, as every role and anonymously.

Schemathesis reads /api/v1/schema/ from the running app (in process, over
WSGI) and generates requests from it, valid and invalid. Every answer must be
no 5xx, a documented status code, a documented content type and a body that
matches the schema; and a refused write (any 4xx) must leave every table and
the ledger as they were. Operations are taken from the schema, so a new
endpoint is fuzzed as soon as it is routed.

About half the generated requests name a real object of the record (the
``world`` fixture) in their path instead of a random id, so the code behind the
404 is exercised too. Bounded and derandomized: the same requests every run.
"""

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from django.apps import apps
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, connection
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from leadrecord.roles import Role

from .conftest import World, path_sample

pytestmark = [
    pytest.mark.django_db,
    # pygal (the report charts) puts an old-style import hook on sys.meta_path;
    # every import after it warns. Not ours to fix here.
    pytest.mark.filterwarnings("ignore:PluginImportFixer.find_spec:ImportWarning"),
]

EXAMPLES_PER_OPERATION = 24
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# Every table a write could touch: the project's apps, users and tokens.
COUNTED_APPS = ("contacts", "handoff", "reports", "buyers", "leadrecord", "auth", "knox")


def row_counts() -> dict[str, int]:
    """Rows per table, in one query (it runs before and after every refused write)."""
    models = [model for app in COUNTED_APPS for model in apps.get_app_config(app).get_models()]
    quote = connection.ops.quote_name
    counts = ", ".join(f"(SELECT count(*) FROM {quote(model._meta.db_table)})" for model in models)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {counts}")
        row = cursor.fetchone()
    return {model._meta.label: int(n) for model, n in zip(models, row, strict=True)}


@pytest.fixture
def wsgi_app() -> Iterator[Callable[..., Any]]:
    """The project's WSGI app, answering inside the test's transaction.

    Django closes "old" connections at the start and end of every request; in a
    test that would close the connection holding the test's transaction, so
    (like Django's own test client) the closing is off while the test runs.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _auth(world: World, role: str | None) -> dict[str, str]:
    return {"Authorization": f"Token {world.tokens[role]}"} if role else {}


def _fuzz(operation: Any, world: World, headers: dict[str, str], answers: Counter[str]) -> None:
    sample = path_sample(operation.path, world)
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, real_object=st.booleans())
    def run(case: Any, real_object: bool) -> None:
        if real_object and sample:
            case.path_parameters = {**(case.path_parameters or {}), **sample}
        written = operation.method.upper() not in SAFE_METHODS
        before = row_counts() if written else {}
        response = case.call(headers=headers)
        answers[f"{operation.method.upper()} {response.status_code // 100}xx"] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)
        if written and 400 <= response.status_code < 500:
            after = row_counts()
            changed = {
                table: (before[table], n) for table, n in after.items() if before[table] != n
            }
            assert not changed, (
                f"{operation.label} answered {response.status_code} but wrote rows "
                f"(table: before, after): {changed}\nbody: {case.body!r}"
            )

    run()


@pytest.mark.parametrize("role", [*Role.values, None], ids=[*Role.values, "anonymous"])
def test_every_operation_holds_to_the_schema(role, world, wsgi_app):
    # The schema is served to any signed-in user; anonymous callers are fuzzed
    # with the schema as a manager reads it.
    schema = schemathesis.openapi.from_wsgi(
        "/api/v1/schema/?format=json", wsgi_app, headers=_auth(world, role or Role.MANAGER)
    )
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) > 30, "the schema lost its operations"
    failures: dict[str, BaseException] = {}
    answers: Counter[str] = Counter()
    for operation in operations:
        try:
            _fuzz(operation, world, _auth(world, role), answers)
        except (Exception, BaseExceptionGroup) as failure:  # report every failing operation
            failures[operation.label] = failure
    assert not failures, "\n\n".join(
        f"=== {label}\n{failure}" for label, failure in failures.items()
    )
    # Not vacuous: the requests got past authentication and, for writers, were stored.
    if role is None:
        assert answers["GET 2xx"] > 0  # health/
    else:
        assert answers["GET 2xx"] > 2 * EXAMPLES_PER_OPERATION, answers
    if role == Role.MANAGER:
        assert answers["POST 2xx"] > 2 * EXAMPLES_PER_OPERATION, answers
