"""The default channels (docs/api.md), kept present after every migrate and flush."""

from __future__ import annotations

DEFAULT_CHANNELS: dict[str, tuple[str, ...]] = {
    "marketing": (
        "web",
        "email",
        "paid_search",
        "paid_social",
        "organic_social",
        "event",
        "webinar",
        "content",
    ),
    "partner": ("partner", "referral"),
    "sales": ("sales_call", "sales_meeting", "sales_email"),
}

# What people read for the default channels; a channel added later reads as its key in words.
CHANNEL_LABELS = {
    "web": "Website",
    "email": "Email",
    "paid_search": "Paid search",
    "paid_social": "Paid social",
    "organic_social": "Organic social",
    "event": "Event",
    "webinar": "Webinar",
    "content": "Content",
    "partner": "Partner",
    "referral": "Referral",
    "sales_call": "Sales call",
    "sales_meeting": "Sales meeting",
    "sales_email": "Sales email",
}


def channel_label(key: str) -> str:
    """A channel's name for people: "Sales call" for ``sales_call``."""
    return CHANNEL_LABELS.get(key) or key.replace("_", " ").replace("-", " ").capitalize()


def channels_ensure(**kwargs: object) -> None:
    """Create any missing default channel (the data migration does it first).

    Runs on ``post_migrate`` so a flushed test database has them too, as the
    role groups do; it never changes a channel a manager has edited.
    """
    from .models import Channel
    from .selectors import channels_forget

    channels_forget()
    existing = set(Channel.objects.values_list("key", flat=True))
    Channel.objects.bulk_create(
        [
            Channel(key=key, team=team)
            for team, keys in DEFAULT_CHANNELS.items()
            for key in keys
            if key not in existing
        ]
    )
