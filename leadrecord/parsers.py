"""The API's JSON parser: DRF's, plus the refusals every JSON body needs.

- Nesting: Python's decoder gives up on deep nesting with a RecursionError
  (a 500), and a body that just fits would fail later, wherever it is walked
  again (hashing it for an Idempotency-Key, storing it). No request here is
  more than a few levels deep, so anything deeper than ``MAX_DEPTH`` is a 400.
- NUL characters: PostgreSQL's text and jsonb cannot hold U+0000, so a body
  carrying one anywhere (a value or a key) is a 400 naming where, before any
  of it can reach the database, an echo in a stored answer included.

Both checks walk the parsed body with a stack rather than by recursion, so no
depth can overflow them; the NUL walk runs only when the text has a ``\\u0000``
escape, the one way JSON can carry that character.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.utils import json

# Deep enough for any body of the API (events nest four levels), far below
# the interpreter's recursion limit.
MAX_DEPTH = 32
NUL = "\x00"
NUL_ESCAPE = "\\u0000"
NUL_DETAIL = "Null characters are not allowed."
NUL_CODE = "null_characters_not_allowed"
TOO_DEEP = f"JSON parse error - nested more than {MAX_DEPTH} levels."


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser (same decoding, same errors), refusing deep nesting and NULs."""

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        parse_constant = json.strict_constant if self.strict else None
        try:
            text = stream.read().decode(encoding)
            data = json.loads(text, parse_constant=parse_constant)
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from error
        except RecursionError as error:
            raise ParseError(TOO_DEEP) from error
        json_depth_check(data)
        if NUL_ESCAPE in text:
            json_nul_check(data)
        return data


def json_depth_check(data: Any) -> None:
    """ParseError when ``data`` nests deeper than MAX_DEPTH.

    Level by level, keeping only the containers: the decoder makes plain dicts
    and lists, so exact type tests do (and cost far less than ``isinstance``).
    """
    level = [data] if type(data) is dict or type(data) is list else []
    depth = 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            raise ParseError(TOO_DEEP)
        below: list[Any] = []
        for value in level:
            below += [
                item
                for item in (value.values() if type(value) is dict else value)
                if type(item) is dict or type(item) is list
            ]
        level = below


def json_nul_check(data: Any) -> None:
    """ValidationError naming a value or key that holds a NUL: its dotted path, list
    items by index (the shape drf-standardized-errors gives ``attr``)."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if NUL in value:
                raise ValidationError({_attr(path): [NUL_DETAIL]}, code=NUL_CODE)
        elif isinstance(value, dict):
            for key, item in value.items():
                if NUL in key:
                    raise ValidationError({_attr(path): [NUL_DETAIL]}, code=NUL_CODE)
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, str(index))) for index, item in enumerate(value))


def _attr(path: tuple[str, ...]) -> str:
    return ".".join(path) or "non_field_errors"
