"""The visit script, the no-script pixel and the collector (``/c.js``, ``/c.gif``, ``/c/``).

Public and cookieless unless the browser already carries a visitor id (set only
with analytics consent, by a form): these never set a cookie. The script can be
served from behind the website's own domain (a proxy passing ``/c.js`` and
``/c/`` to LeadRecord); it posts to the address it was loaded from, so the
visitor id (a first-party, SameSite=Lax cookie) travels only there.
"""

from __future__ import annotations

import base64

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from leadrecord.errors import DomainError, error_status
from leadrecord.throttling import AddressThrottle

from .views import VISITOR_COOKIE
from .visits import visit_record

# A transparent 1x1 GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
SCRIPT = """(function () {
  var s = document.currentScript, base = s ? new URL(s.src).origin : "";
  var d = new FormData();
  d.append("u", location.href);
  d.append("r", document.referrer);
  if (navigator.sendBeacon) { navigator.sendBeacon(base + "/c/", d); }
  else { fetch(base + "/c/", {method: "POST", body: d, credentials: "include", keepalive: true}); }
})();
"""


class VisitThrottle(AddressThrottle):
    scope = "visit"
    setting = "VISIT_RATE_LIMIT"


@require_GET
def visit_script(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(SCRIPT, content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=3600"
    return response


def _collect(request: HttpRequest, page_url: str, referrer: str) -> int:
    """Record one view; the status to answer (204, or why not)."""
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > settings.BUYER_FORM_MAX_BYTES:
        return 413
    if not VisitThrottle().allow(request):
        return 429
    try:
        visit_record(
            page_url=page_url,
            referrer=referrer,
            visitor_token=request.COOKIES.get(VISITOR_COOKIE),
        )
    except DomainError as error:
        return error_status(error)
    return 204


@csrf_exempt
@require_POST
def visit_collect(request: HttpRequest) -> HttpResponse:
    """What the script sends: ``u`` (the page's address) and ``r`` (its referrer)."""
    status = _collect(request, request.POST.get("u", ""), request.POST.get("r", ""))
    return HttpResponse(status=status)


@require_GET
def visit_pixel(request: HttpRequest) -> HttpResponse:
    """The no-script pixel: the page is ``u`` when given, else the Referer."""
    page_url = request.GET.get("u") or request.META.get("HTTP_REFERER", "")
    _collect(request, page_url, request.GET.get("r", ""))
    # Always the image: a broken image on the website would say nothing useful.
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Cache-Control"] = "no-store"
    return response
