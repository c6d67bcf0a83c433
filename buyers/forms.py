"""The pages' forms: the public form a person fills in (built from a ``BuyerForm``), and the
marketer's form that publishes one."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core import signing

from contacts.models import (
    DISCLOSURE_VALUE_MAX_LENGTH,
    EMAIL_MAX_LENGTH,
    JOURNEY_STAGE_KEY,
    NAME_MAX_LENGTH,
    ORGANIZATION_NAME_MAX_LENGTH,
    Audience,
    Campaign,
    ConsentPurpose,
    DisclosurePurpose,
    JourneyStage,
)

from .models import (
    CLICK_ID_KEYS,
    CLICK_ID_MAX_LENGTH,
    FORM_INTRO_MAX_LENGTH,
    FORM_SLUG_MAX_LENGTH,
    FORM_TITLE_MAX_LENGTH,
    URL_MAX_LENGTH,
    UTM_KEYS,
    BuyerForm,
)
from .services import Answer, Arrival, FormInput

HONEYPOT_FIELD = "website"  # a field people never see; bots fill it in
TIMING_FIELD = "lr_t"
_TIMING_SALT = "buyers.form-timing"
UTM_VALUE_MAX_LENGTH = 200

# The buyer's choice of audience for each disclosure; the first, and default,
# is the narrowest: the team that runs the form.
AUDIENCE_CHOICES = [
    (Audience.MARKETING.value, "Marketing only"),
    (Audience.SALES.value, "Sales only"),
    (Audience.ALL.value, "Marketing and sales"),
]


def timing_token(slug: str, now: float) -> str:
    """A signed note of when the form was shown, which the post brings back."""
    return signing.dumps({"f": slug, "t": now}, salt=_TIMING_SALT, compress=True)


def timing_read(token: str, slug: str) -> float | None:
    """When the form was shown, or None for a token that is missing, forged or another form's."""
    try:
        value = signing.loads(token, salt=_TIMING_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(value, dict) or value.get("f") != slug:
        return None
    shown = value.get("t")
    return float(shown) if isinstance(shown, int | float) else None


class PublicForm(forms.Form):
    """A published form as a person sees it. Field names are what an embedded plain HTML
    form posts: ``email``, ``first_name``, ``last_name``, ``organization``,
    ``consent_<purpose>``, ``<key>`` and ``<key>__audience`` per disclosure, the UTM
    fields and click ids, ``page_url``, ``referrer``."""

    email = forms.EmailField(label="Work email", max_length=EMAIL_MAX_LENGTH)

    def __init__(
        self, *args: Any, form: BuyerForm, skip_keys: frozenset[str] = frozenset(), **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.buyer_form = form
        self.email_field = self.fields["email"]
        self.fields["email"].widget.attrs.update({"autocomplete": "email"})
        fields, disclosure_keys, consent_purposes = _public_fields(_FormShape.of(form, skip_keys))
        self.fields.update(fields)
        self.disclosure_keys: list[str] = list(disclosure_keys)
        self.consent_purposes: list[str] = list(consent_purposes)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for key in self.disclosure_keys:
            audience = cleaned.get(f"{key}__audience") or Audience.MARKETING.value
            cleaned[f"{key}__audience"] = audience
        return cleaned

    def visible_disclosures(self) -> list[tuple[forms.BoundField, forms.BoundField]]:
        return [(self[key], self[f"{key}__audience"]) for key in self.disclosure_keys]

    def visible_consents(self) -> list[forms.BoundField]:
        return [self[f"consent_{purpose}"] for purpose in self.consent_purposes]

    def form_input(self) -> FormInput:
        data = self.cleaned_data
        return FormInput(
            email=data["email"],
            first_name=data.get("first_name", ""),
            last_name=data.get("last_name", ""),
            organization=data.get("organization", ""),
            consents=frozenset(
                purpose for purpose in self.consent_purposes if data.get(f"consent_{purpose}")
            ),
            answers={
                key: Answer(value=str(data[key]).strip(), audience=data[f"{key}__audience"])
                for key in self.disclosure_keys
                if str(data.get(key) or "").strip()
            },
        )

    def arrival(self, *, page_url: str, referrer: str) -> Arrival:
        """Where the form came from: the posted fields first, then the page's own address."""
        data = self.cleaned_data
        page = data.get("page_url") or page_url
        query = _query_of(page)
        utm = {k: data.get(k) or query.get(k, "") for k in UTM_KEYS}
        clicks = {k: data.get(k) or query.get(k, "") for k in CLICK_ID_KEYS}
        return Arrival(
            page_url=page[:URL_MAX_LENGTH],
            referrer=(data.get("referrer") or referrer)[:URL_MAX_LENGTH],
            utm={k: v[:UTM_VALUE_MAX_LENGTH] for k, v in utm.items() if v},
            click_ids={k: v[:CLICK_ID_MAX_LENGTH] for k, v in clicks.items() if v},
        )


@dataclass(frozen=True)
class _FormShape:
    """What a published form's fields are built from (and the keys a known person is
    not asked again): equal shapes, equal fields."""

    ask_names: bool
    ask_organization: bool
    disclosures: tuple[tuple[str, str], ...]
    consents: tuple[tuple[str, str, str], ...]
    skip_keys: frozenset[str]

    @classmethod
    def of(cls, form: BuyerForm, skip_keys: frozenset[str]) -> _FormShape:
        return cls(
            ask_names=bool(form.ask_names),
            ask_organization=bool(form.ask_organization),
            disclosures=tuple((str(item["key"]), str(item["label"])) for item in form.disclosures),
            consents=tuple(
                (str(item["purpose"]), str(item["notice"]), str(item["version"]))
                for item in form.consents
            ),
            skip_keys=frozenset(skip_keys),
        )


@functools.lru_cache(maxsize=256)
def _public_fields(
    shape: _FormShape,
) -> tuple[dict[str, forms.Field], list[str], list[str]]:
    """A form's fields after the email, its disclosure keys asked and its consent purposes,
    built once per shape and process: every post and view of a form builds the same
    twenty fields, which cost a tenth of a post (``bench/forms.py``). The field objects
    are shared by the forms of a shape: nothing alters a field once built (rendering and
    cleaning read them), as the ``PublicForm`` tests check."""
    fields: dict[str, forms.Field] = {}
    if shape.ask_names:
        fields["first_name"] = forms.CharField(
            label="First name", max_length=NAME_MAX_LENGTH, required=False
        )
        fields["first_name"].widget.attrs["autocomplete"] = "given-name"
        fields["last_name"] = forms.CharField(
            label="Last name", max_length=NAME_MAX_LENGTH, required=False
        )
        fields["last_name"].widget.attrs["autocomplete"] = "family-name"
    if shape.ask_organization:
        fields["organization"] = forms.CharField(
            label="Organization", max_length=ORGANIZATION_NAME_MAX_LENGTH, required=False
        )
        fields["organization"].widget.attrs["autocomplete"] = "organization"
    disclosure_keys: list[str] = []
    for key, label in shape.disclosures:
        if key in shape.skip_keys:
            continue  # progressive profiling: already told us
        disclosure_keys.append(key)
        if key == JOURNEY_STAGE_KEY:
            fields[key] = forms.ChoiceField(
                label=label, choices=[("", "—"), *JourneyStage.choices], required=False
            )
        else:
            fields[key] = forms.CharField(
                label=label, max_length=DISCLOSURE_VALUE_MAX_LENGTH, required=False
            )
        fields[f"{key}__audience"] = forms.ChoiceField(
            label=f"Share “{label}” with",
            choices=AUDIENCE_CHOICES,
            initial=Audience.MARKETING.value,
            required=False,
            widget=forms.RadioSelect,
        )
    consent_purposes: list[str] = []
    purpose_labels = dict(ConsentPurpose.choices)
    for purpose, notice, version in shape.consents:
        consent_purposes.append(purpose)
        fields[f"consent_{purpose}"] = forms.BooleanField(
            label=notice,
            required=False,
            help_text=f"{purpose_labels[purpose]}, notice version {version}",
        )
    for name in (*UTM_KEYS, *CLICK_ID_KEYS):
        max_length = UTM_VALUE_MAX_LENGTH if name in UTM_KEYS else CLICK_ID_MAX_LENGTH
        fields[name] = forms.CharField(
            max_length=max_length, required=False, widget=forms.HiddenInput
        )
    for name in ("page_url", "referrer"):
        fields[name] = forms.CharField(
            max_length=URL_MAX_LENGTH, required=False, widget=forms.HiddenInput
        )
    return fields, disclosure_keys, consent_purposes


def _query_of(url: str) -> dict[str, str]:
    from urllib.parse import parse_qsl, urlsplit

    try:
        return dict(parse_qsl(urlsplit(url).query))
    except ValueError:
        return {}


class BuyerFormCreateForm(forms.Form):
    """The marketer's page: consents and disclosures as JSON lists, as in the API."""

    slug = forms.SlugField(max_length=FORM_SLUG_MAX_LENGTH)
    title = forms.CharField(max_length=FORM_TITLE_MAX_LENGTH)
    intro = forms.CharField(max_length=FORM_INTRO_MAX_LENGTH, required=False, widget=forms.Textarea)
    ask_names = forms.BooleanField(required=False, initial=True)
    ask_organization = forms.BooleanField(required=False, initial=True)
    purpose = forms.ChoiceField(
        choices=DisclosurePurpose.choices, initial=DisclosurePurpose.QUALIFICATION
    )
    campaign = forms.ModelChoiceField(queryset=Campaign.objects.all(), required=False)
    consents = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        initial=json.dumps(
            [
                {
                    "purpose": "marketing_email",
                    "notice": "Send me product news by email.",
                    "version": "1",
                }
            ],
            indent=1,
        ),
        help_text='A JSON list of {"purpose", "notice", "version"}; purposes: '
        + ", ".join(ConsentPurpose.values),
    )
    disclosures = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        initial=json.dumps([{"key": "journey_stage", "label": "Where are you?"}], indent=1),
        help_text='A JSON list of {"key", "label"}; journey_stage offers the stages.',
    )

    def _json(self, name: str) -> Any:
        try:
            return json.loads(self.cleaned_data[name])
        except ValueError as error:
            raise forms.ValidationError("Not valid JSON.") from error

    def clean_consents(self) -> Any:
        return self._json("consents")

    def clean_disclosures(self) -> Any:
        return self._json("disclosures")
