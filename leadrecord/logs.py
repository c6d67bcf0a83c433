"""Keep personal values out of the logs: request lines are logged without their query.

Searches put an email or a name in the query string (the contacts page and
``GET contacts/?search=``, the touch form's person search, the admin), and a
log outlives an erasure. gunicorn's access log leaves the query out by its
format (``leadrecord/gunicorn_config.py``); this filter does the same for the
loggers that format a request line themselves: runserver's ``django.server``
and gunicorn's error log ("Error handling request /path?query").
"""

from __future__ import annotations

import logging
import re

# A path followed by its query: "/contacts/?search=ada@example.com" in
# "GET /contacts/?search=ada@example.com HTTP/1.1". The query ends at
# whitespace or a quote, as in a request line.
_QUERY = re.compile(r"(/[^\s?\"']*)\?[^\s\"']*")


def without_query_string(text: str) -> str:
    """``text`` with every path's query string removed."""
    return _QUERY.sub(r"\1", text)


class WithoutQueryStrings(logging.Filter):
    """Strips query strings from a record's message and string arguments; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = without_query_string(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                without_query_string(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True
