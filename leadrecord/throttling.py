"""Per-token API rate limits (DRF throttling): over a limit, 429 with ``Retry-After``.

Two limits apply to every token: a sustained rate (``API_RATE_LIMIT``) and a
burst rate (``API_RATE_LIMIT_BURST``); a signed-in browser session is counted
per user the same way. ``health/`` opts out. The counts live in the project's
cache (``CACHE_URL``).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from knox.models import AuthToken
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle


class _FixedWindowThrottle(SimpleRateThrottle):
    """A counter per caller and time window, kept with the cache's atomic increment.

    DRF's own SimpleRateThrottle keeps one timestamp per request in a single
    cache entry and rewrites the whole list on every request: at generous rates
    (a hundred thousand an hour) that is a list of that length read and written
    per request, and two processes can lose each other's writes. A counter per
    window costs the same at any rate. A caller may get up to twice the rate
    across a window's edge; the burst limit bounds that.

    The rate is read from settings on each request (DRF reads its
    ``DEFAULT_THROTTLE_RATES`` once, at import), so an operator's value and a
    test's override both apply.
    """

    setting = ""
    window_end = 0.0
    num_requests: int | None
    duration: int | None

    def get_rate(self) -> str | None:
        rate: str | None = getattr(settings, self.setting)
        return rate

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if isinstance(request.auth, AuthToken):
            ident = f"token-{request.auth.digest[:40]}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            return None  # anonymous callers get 401 before this, health/ opts out
        return f"throttle-{self.scope}-{ident}"

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.num_requests is None or self.duration is None:
            return True
        ident = self.get_cache_key(request, view)
        if ident is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_end = float((window + 1) * self.duration)
        key = f"{ident}-{window}"
        try:
            count = self.cache.incr(key)
        except ValueError:  # the window's first request (or its counter was evicted)
            # Unless another process counted the window's first request meanwhile.
            count = 1 if self.cache.add(key, 1, timeout=self.duration) else self.cache.incr(key)
        return bool(count <= self.num_requests)

    def wait(self) -> float:
        """Seconds until the window ends and the count starts again (at least one)."""
        return max(self.window_end - self.now, 1.0)


class TokenSustainedThrottle(_FixedWindowThrottle):
    scope = "token-sustained"
    setting = "API_RATE_LIMIT"


class TokenBurstThrottle(_FixedWindowThrottle):
    scope = "token-burst"
    setting = "API_RATE_LIMIT_BURST"


class AddressThrottle(_FixedWindowThrottle):
    """The same fixed-window count per client address, for the buyer's public pages.

    They have no token or user to count by. The address is the connection's
    (``REMOTE_ADDR``); behind a proxy the proxy must set it (gunicorn's
    ``forwarded_allow_ips``), or every visitor shares one count. Subclasses name
    the scope and the setting that holds the rate; ``allow`` takes a plain Django
    request, since the public pages are not DRF views.
    """

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        address = request.META.get("REMOTE_ADDR") or "unknown"
        return f"throttle-{self.scope}-addr-{address}"

    def allow(self, request: Any) -> bool:
        return self.allow_request(request, None)
