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
    NavItem("Rules", "rulesets", frozenset({Role.MANAGER})),
    NavItem("Webhooks", "webhooks", frozenset({Role.MANAGER})),
    NavItem("Record", "ledger", frozenset({Role.MANAGER, Role.PRIVACY_OFFICER})),
    NavItem("Erasure requests", "erasure_requests", frozenset({Role.PRIVACY_OFFICER})),
    NavItem("API docs", "api-docs", frozenset(Role.values)),
    NavItem("Guide", "guide", frozenset(Role.values)),
)


def navigation(request: HttpRequest) -> dict[str, object]:
    roles = user_roles(getattr(request, "user", None))
    items = [
        {"label": item.label, "url": reverse(item.url_name), "active": False}
        for item in NAV_ITEMS
        if roles & item.roles
    ]
    for entry in items:
        entry["active"] = request.path == entry["url"] or (
            entry["url"] != "/" and request.path.startswith(str(entry["url"]))
        )
    return {
        "nav_items": items,
        "user_role_labels": [Role(role).label for role in sorted(roles)],
    }
