"""The navigation bar, by role. Later pages add their entry here."""

from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import reverse

from .roles import Role, user_roles


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    roles: frozenset[str]
    # Pages opened now and then sit under "More", so a manager's menu fits a laptop's line.
    more: bool = False


NAV_ITEMS = (
    NavItem("Home", "home", frozenset(Role.values) - {Role.INTEGRATION}),
    NavItem(
        "Contacts",
        "contacts",
        frozenset({Role.MARKETER, Role.SALES_REP, Role.MANAGER, Role.PRIVACY_OFFICER}),
    ),
    NavItem(
        "Organizations",
        "organizations",
        frozenset({Role.MARKETER, Role.SALES_REP, Role.MANAGER, Role.PRIVACY_OFFICER}),
    ),
    NavItem("Touches", "touches", frozenset({Role.MARKETER, Role.MANAGER})),
    NavItem("Forms", "buyer_forms", frozenset({Role.MARKETER, Role.MANAGER})),
    NavItem("Handoffs", "handoff-queue", frozenset({Role.SALES_REP, Role.MANAGER})),
    NavItem("Handoffs", "handoffs-returned", frozenset({Role.MARKETER})),
    NavItem("Deals", "deals", frozenset({Role.SALES_REP, Role.MANAGER})),
    NavItem("Reports", "reports", frozenset({Role.MARKETER, Role.SALES_REP, Role.MANAGER})),
    NavItem("Rules", "rulesets", frozenset({Role.MANAGER}), more=True),
    NavItem("Webhooks", "webhooks", frozenset({Role.MANAGER}), more=True),
    NavItem("Record", "ledger", frozenset({Role.MANAGER, Role.PRIVACY_OFFICER})),
    NavItem("Erasure requests", "erasure_requests", frozenset({Role.PRIVACY_OFFICER})),
    NavItem("API docs", "api-docs", frozenset(Role.values), more=True),
    NavItem("Guide", "guide", frozenset(Role.values), more=True),
)


def navigation(request: HttpRequest) -> dict[str, object]:
    roles = user_roles(getattr(request, "user", None))
    items = [
        {"label": item.label, "url": reverse(item.url_name), "active": False, "more": item.more}
        for item in NAV_ITEMS
        if roles & item.roles
    ]
    for entry in items:
        entry["active"] = request.path == entry["url"] or (
            entry["url"] != "/" and request.path.startswith(str(entry["url"]))
        )
    return {
        "nav_items": [entry for entry in items if not entry["more"]],
        "nav_more": [entry for entry in items if entry["more"]],
        "nav_more_active": any(entry["active"] for entry in items if entry["more"]),
        "user_role_labels": [Role(role).label for role in sorted(roles)],
    }
