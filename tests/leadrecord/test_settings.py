"""Settings come from the environment; each case runs Django in a fresh process."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'engine': s.DATABASES['default']['ENGINE'], "
    "'name': str(s.DATABASES['default']['NAME']), 'eager': s.CELERY_TASK_ALWAYS_EAGER, "
    "'currency': s.LEADRECORD_CURRENCY, 'hosts': s.ALLOWED_HOSTS, 'debug': s.DEBUG}))"
)
_PASSTHROUGH = ("PATH", "HOME", "LANG", "VIRTUAL_ENV", "PYTHONPATH", "SYSTEMROOT")


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k in _PASSTHROUGH}
    clean["DJANGO_SETTINGS_MODULE"] = "leadrecord.settings"
    clean.update(env)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


def _settings(**env: str) -> dict[str, object]:
    import json

    result = _run(["-c", PROBE], **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_defaults_are_the_embedded_mode(tmp_path):
    values = _settings(DEBUG="1", LEADRECORD_DATA_DIR=str(tmp_path))
    assert values["engine"] == "django.db.backends.sqlite3"
    assert values["name"] == str(tmp_path / "leadrecord.sqlite3")
    assert values["eager"] is True
    assert values["currency"] == "USD"
    assert tmp_path.is_dir()


def test_environment_overrides():
    values = _settings(
        SECRET_KEY="x" * 60,
        DATABASE_URL="postgres://u:p@db.internal:5432/lr",
        CELERY_BROKER_URL="redis://cache:6379/0",
        ALLOWED_HOSTS="crm.example.com,api.example.com",
        LEADRECORD_CURRENCY="eur",
    )
    assert values["engine"] == "django.db.backends.postgresql"
    assert values["name"] == "lr"
    assert values["eager"] is False
    assert values["currency"] == "EUR"
    assert values["hosts"] == ["crm.example.com", "api.example.com"]
    assert values["debug"] is False


def test_secret_key_is_required_without_debug():
    result = _run(["-c", PROBE], DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.mark.parametrize("key", ["", "   "])
def test_an_empty_secret_key_is_refused(key):
    assert _run(["-c", PROBE], DEBUG="0", SECRET_KEY=key).returncode != 0


def test_production_values_pass_check_deploy_without_warnings(tmp_path):
    result = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="leadrecord.example.com",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_owner_and_ledger_checkpoint_settings(tmp_path):
    probe = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "m = s.MIGRATE_DATABASE or {}; print(json.dumps({'owner': m.get('USER'), "
        "'key': s.LEDGER_SIGNING_KEY, 'dir': str(s.LEDGER_CHECKPOINT_DIR)}))"
    )
    app = "postgres://leadrecord_app:a@db:5432/lr"
    result = _run(["-c", probe], DEBUG="1", LEADRECORD_DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f'{{"owner": null, "key": "", "dir": "{tmp_path / "checkpoints"}"}}'
    )
    result = _run(
        ["-c", probe],
        DEBUG="1",
        DATABASE_URL=app,
        MIGRATE_DATABASE_URL="postgres://leadrecord:o@db:5432/lr",
        LEDGER_SIGNING_KEY="/keys/ledger.key",
        LEDGER_CHECKPOINT_DIR="/srv/checkpoints",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        '{"owner": "leadrecord", "key": "/keys/ledger.key", "dir": "/srv/checkpoints"}'
    )
    other = _run(
        ["-c", probe],
        DEBUG="1",
        DATABASE_URL=app,
        MIGRATE_DATABASE_URL="postgres://leadrecord:o@db:5432/elsewhere",
    )
    assert other.returncode != 0
    assert "MIGRATE_DATABASE_URL must name the same database" in other.stderr
