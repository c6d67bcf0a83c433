"""Every operation in the OpenAPI schema has examples, and the request examples fit their schema.

The schema is generated as ``/api/v1/schema/`` serves it (drf-spectacular's
generator, with the project's hooks). An operation without a response example,
or with a request body but no request example, fails the test; every request
example must validate against its request schema (JSON Schema, with the
schema's components), so the docs never show a request the API would refuse
for its shape.
"""

from typing import Any

import jsonschema
import pytest
from drf_spectacular.generators import SchemaGenerator

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

JSON = "application/json"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    generated: dict[str, Any] = SchemaGenerator().get_schema(request=None, public=True)
    return generated


def operations(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0's ``nullable: true`` as JSON Schema says it (``null`` is one more type)."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        if "type" in converted:
            converted["type"] = [converted["type"], "null"]
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
        if "type" not in converted:
            converted = {"anyOf": [converted, {"type": "null"}]}
    return converted


def _resolved(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node`` with the components beside it, so ``$ref``s resolve."""
    return _json_schema({**node, "components": schema["components"]})


def test_the_schema_has_the_operations_of_api_md(schema):
    labels = {label for label, _ in operations(schema)}
    assert len(labels) >= 45
    for known in (
        "POST /api/v1/events/",
        "POST /api/v1/handoffs/",
        "GET /api/v1/reports/attribution/",
        "GET /api/v1/health/",
    ):
        assert known in labels


def test_every_operation_has_a_success_response_example(schema):
    missing = []
    for label, operation in operations(schema):
        successes = [
            answer for status, answer in operation["responses"].items() if status.startswith("2")
        ]
        examples = [
            name
            for answer in successes
            for name in answer.get("content", {}).get(JSON, {}).get("examples", {})
        ]
        if not examples:
            missing.append(label)
    assert not missing, "operations without a response example:\n" + "\n".join(missing)


def test_every_operation_with_a_body_has_a_request_example(schema):
    missing = [
        label
        for label, operation in operations(schema)
        if "requestBody" in operation
        and not operation["requestBody"]["content"].get(JSON, {}).get("examples")
    ]
    assert not missing, "operations without a request example:\n" + "\n".join(missing)


def test_every_request_example_fits_its_request_schema(schema):
    failures = []
    checked = 0
    for label, operation in operations(schema):
        body = operation.get("requestBody", {}).get("content", {}).get(JSON)
        if not body:
            continue
        validator = jsonschema.Draft202012Validator(_resolved(schema, body["schema"]))
        for name, example in body.get("examples", {}).items():
            checked += 1
            failures += [
                f"{label} {name!r}: {error.message} at {list(error.absolute_path)}"
                for error in validator.iter_errors(example["value"])
            ]
    assert checked >= 25
    assert not failures, "\n".join(failures)


def test_every_response_example_fits_its_response_schema(schema):
    """Success and error answers alike: the docs show what the API really answers."""
    failures = []
    for label, operation in operations(schema):
        for status, answer in operation["responses"].items():
            content = answer.get("content", {}).get(JSON)
            if not content or "schema" not in content:
                continue
            validator = jsonschema.Draft202012Validator(_resolved(schema, content["schema"]))
            for name, example in content.get("examples", {}).items():
                failures += [
                    f"{label} {status} {name!r}: {error.message} at {list(error.absolute_path)}"
                    for error in validator.iter_errors(example["value"])
                ]
    assert not failures, "\n".join(failures)


def test_the_events_examples_show_a_rejected_event_and_the_409_shows_no_buyer_consent(schema):
    events = schema["paths"]["/api/v1/events/"]["post"]
    answers = events["responses"]["200"]["content"][JSON]["examples"]
    statuses = {
        result["status"] for example in answers.values() for result in example["value"]["results"]
    }
    assert statuses == {"created", "duplicate", "rejected"}
    handoffs = schema["paths"]["/api/v1/handoffs/"]["post"]
    conflicts = handoffs["responses"]["409"]["content"][JSON]["examples"]
    codes = {
        error["code"] for example in conflicts.values() for error in example["value"]["errors"]
    }
    assert "no_buyer_consent" in codes
