from django.db import migrations

# docs/api.md's default channels and their teams.
DEFAULT_CHANNELS = {
    "marketing": [
        "web",
        "email",
        "paid_search",
        "paid_social",
        "organic_social",
        "event",
        "webinar",
        "content",
    ],
    "partner": ["partner", "referral"],
    "sales": ["sales_call", "sales_meeting", "sales_email"],
}


def channels_create(apps, schema_editor):
    Channel = apps.get_model("contacts", "Channel")
    for team, keys in DEFAULT_CHANNELS.items():
        for key in keys:
            Channel.objects.get_or_create(key=key, defaults={"team": team})


class Migration(migrations.Migration):
    dependencies = [("contacts", "0002_channels_campaigns_touches")]

    operations = [migrations.RunPython(channels_create, migrations.RunPython.noop)]
