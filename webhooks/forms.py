from django import forms

from contacts.models import Audience

from .models import EventType
from .services import URL_MAX_LENGTH


class EndpointForm(forms.Form):
    url = forms.URLField(label="URL", max_length=URL_MAX_LENGTH, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        choices=EventType.choices, widget=forms.CheckboxSelectMultiple
    )
    audience = forms.ChoiceField(
        choices=Audience.choices,
        help_text="The team the receiving system acts for: it hears only what that team may see.",
    )


class ReplayForm(forms.Form):
    message_id = forms.CharField(max_length=40, required=False)
    failed = forms.BooleanField(required=False)
