"""Reports computed once per state of the record.

Every change to the record appends to the ledger in the same transaction
(attribution runs and the people aggregates they rebuild included), so the
ledger's head, its last ``seq`` and ``hash``, names the state a report reads.
A report's result is cached under its arguments, the reporting time zone and
that head: the first reader after a change computes it afresh, the readers
after it get the same numbers without the queries.

The head is read before the report's own queries, and each of those sees the
record as committed when it runs, so a cached result is never older than the
head it is filed under. The hash (not only the seq) keeps two different
records that happen to reach the same ``seq``, such as a restored backup or
rolled-back test data, from sharing an entry.

Within one page (``computed_once_per_page``) a report asked for again with the same
arguments, by another section, is the first answer, cache or no cache: the page shows
one set of numbers, and while events stream in (each changes the head, so the cache
misses) it does not pay for the same report twice.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar, cast

from django.conf import settings
from django.core.cache import cache

from leadrecord.models import LedgerEntry

logger = logging.getLogger(__name__)

Params = ParamSpec("Params")
Result = TypeVar("Result")


# The reports computed so far for the page being built, by call; None outside a page.
_page_results: ContextVar[dict[str, Any] | None] = ContextVar("report_page_results", default=None)


@contextmanager
def computed_once_per_page() -> Iterator[None]:
    """While the block runs, each report is computed at most once per arguments."""
    token = _page_results.set({})
    try:
        yield
    finally:
        _page_results.reset(token)


def ledger_head() -> str:
    """The ledger's last entry as ``seq:hash`` (``0:`` while the ledger is empty)."""
    head = LedgerEntry.objects.order_by("-seq").values_list("seq", "hash").first()
    return "0:" if head is None else f"{head[0]}:{head[1]}"


def report_cached(function: Callable[Params, Result]) -> Callable[Params, Result]:
    """Cache ``function``'s result per arguments and state of the record.

    The cache only saves work: when it cannot be reached the report is computed
    as if it were empty, never refused.
    """
    name = f"{function.__module__}.{function.__qualname__}"

    @functools.wraps(function)
    def cached(*args: Params.args, **kwargs: Params.kwargs) -> Result:
        arguments = ",".join([*map(repr, args), *(f"{k}={v!r}" for k, v in sorted(kwargs.items()))])
        page = _page_results.get()
        if page is None:
            return _through_cache(arguments, *args, **kwargs)
        call = f"{name}({arguments})"
        if call not in page:
            page[call] = _through_cache(arguments, *args, **kwargs)
        return cast(Result, page[call])

    def _through_cache(arguments: str, *args: Params.args, **kwargs: Params.kwargs) -> Result:
        seconds = settings.REPORT_CACHE_SECONDS
        if seconds <= 0:
            return function(*args, **kwargs)
        state = f"{name}({arguments}):{settings.TIME_ZONE}:{ledger_head()}"
        # Hashed: any backend takes it (memcached refuses spaces and long keys).
        key = "report:" + hashlib.sha256(state.encode()).hexdigest()
        try:
            found = cache.get(key)
        except Exception:  # the cache is an optimization, never a reason to fail
            logger.warning("report cache unreachable, computing %s", name, exc_info=True)
            return function(*args, **kwargs)
        if found is not None:
            return found
        result = function(*args, **kwargs)
        try:
            cache.set(key, result, seconds)
        except Exception:
            logger.warning("report cache unreachable, %s not kept", name, exc_info=True)
        return result

    return cached
