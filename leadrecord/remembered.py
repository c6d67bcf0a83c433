"""Values a process read and keeps for a few seconds.

A hot path that reads something rarely changed on every request (a published form, a
channel, who subscribes to webhooks) asks the database once per period instead. The
process that changes such a value forgets its copy at once (``forget``); another
process sees the change when its copy runs out, so each user says how long is safe.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Remembered(Generic[K, V]):
    """Per key, the value ``read`` gave, kept for ``seconds``. ``None`` is never kept:
    something missing is asked for again on the next call."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._values: dict[K, tuple[float, V]] = {}

    def get(self, key: K, read: Callable[[], V]) -> V:
        now = time.monotonic()
        known = self._values.get(key)
        if known is not None and known[0] > now:
            return known[1]
        value = read()
        if value is None:
            self._values.pop(key, None)
        else:
            self._values[key] = (now + self.seconds, value)
        return value

    def forget(self, key: K | None = None) -> None:
        """Drop ``key``'s value, or every value without one."""
        if key is None:
            self._values.clear()
        else:
            self._values.pop(key, None)
