"""docker-compose.yml cannot run here (no Docker engine), so check it against the code."""

import ast
import re
from pathlib import Path

import environ
import pytest
import yaml
from django.urls import resolve

ROOT = Path(__file__).resolve().parents[1]
APP_SERVICES = ("migrate", "web", "worker", "beat")
RUNNING_SERVICES = ("web", "worker", "beat")
_INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[-?])?([^}]*)\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _interpolate(value: str) -> str:
    """Resolve ``${VAR:-default}`` the way compose would with VAR unset."""
    return _INTERPOLATION.sub(lambda m: m.group(2), str(value))


def _settings_env_names() -> set[str]:
    """Every name that leadrecord/settings.py reads with ``env(...)``/``env.x(...)``."""
    tree = ast.parse((ROOT / "leadrecord" / "settings.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        reads_env = (isinstance(func, ast.Name) and func.id == "env") or (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "env"
            and func.attr != "read_env"
        )
        first = node.args[0]
        if reads_env and isinstance(first, ast.Constant) and isinstance(first.value, str):
            names.add(first.value)
    return names


def test_the_stack_has_its_services(compose):
    assert set(compose["services"]) == {"db", "redis", "migrate", "web", "worker", "beat"}


def test_app_services_set_only_settings_the_code_reads(compose):
    read = _settings_env_names()
    assert {"DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "ALLOWED_HOSTS"} <= read
    for name in APP_SERVICES:
        environment = compose["services"][name]["environment"]
        assert set(environment) <= read, (name, set(environment) - read)
        for required in ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "ALLOWED_HOSTS"):
            assert required in environment, (name, required)


def _database(url: str) -> dict:
    return environ.Env.db_url_config(_interpolate(url))


def test_database_url_is_the_application_role_on_the_db_service(compose):
    """The app connects as the role the db's init script creates, never as the owner."""
    db = compose["services"]["db"]["environment"]
    for name in APP_SERVICES:
        parsed = _database(compose["services"][name]["environment"]["DATABASE_URL"])
        assert parsed["ENGINE"] == "django.db.backends.postgresql"
        assert parsed["HOST"] == "db"
        assert parsed["NAME"] == db["POSTGRES_DB"]
        assert parsed["USER"] == db["APP_DB_USER"] != db["POSTGRES_USER"]
        assert parsed["PASSWORD"] == _interpolate(db["APP_DB_PASSWORD"])


def test_only_the_migrate_step_knows_the_owner(compose):
    db = compose["services"]["db"]["environment"]
    owner = _database(compose["services"]["migrate"]["environment"]["MIGRATE_DATABASE_URL"])
    assert (owner["HOST"], owner["NAME"]) == ("db", db["POSTGRES_DB"])
    assert owner["USER"] == db["POSTGRES_USER"]
    assert owner["PASSWORD"] == _interpolate(db["POSTGRES_PASSWORD"])
    for name in RUNNING_SERVICES:
        environment = compose["services"][name]["environment"]
        assert "MIGRATE_DATABASE_URL" not in environment, name
        assert "POSTGRES_PASSWORD" not in str(environment), name


def test_the_db_init_script_creates_the_application_role(compose):
    db = compose["services"]["db"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in db["volumes"]}
    script = mounts["/docker-entrypoint-initdb.d/10-app-role.sh"]
    text = (ROOT / script).read_text()
    assert "CREATE ROLE" in text and "APP_DB_USER" in text and "APP_DB_PASSWORD" in text
    assert "SUPERUSER" not in text.upper().replace("NOSUPERUSER", "")


def test_broker_points_at_the_redis_service(compose):
    for name in APP_SERVICES:
        url = compose["services"][name]["environment"]["CELERY_BROKER_URL"]
        assert re.fullmatch(r"redis://redis:6379/\d+", url), url


def test_commands_match_the_code(compose):
    from leadrecord import celery_app
    from leadrecord.wsgi import application

    assert application is not None
    assert celery_app.main == "leadrecord"
    app_user = compose["services"]["db"]["environment"]["APP_DB_USER"]
    migrate = compose["services"]["migrate"]["command"]
    assert "manage.py migrate" in migrate
    assert migrate.index("manage.py migrate") < migrate.index(f"grant_app_role {app_user}")
    web = compose["services"]["web"]["command"]
    assert "gunicorn leadrecord.wsgi:application" in web
    # The access log is on, in the repo's format: paths without query strings.
    assert "--config python:leadrecord.gunicorn_config" in web
    assert "--access-log-format" not in web
    assert "migrate" not in web
    assert compose["services"]["worker"]["command"].startswith("celery -A leadrecord worker")
    assert compose["services"]["beat"]["command"].startswith("celery -A leadrecord beat")


def test_health_checks_and_start_order(compose):
    services = compose["services"]
    for name in ("db", "redis", "web", "worker"):
        assert services[name]["healthcheck"]["test"], name
    for name in APP_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["db"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
    # The app starts only on a migrated, granted database.
    assert services["web"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    for name in ("worker", "beat"):
        assert services[name]["depends_on"]["web"]["condition"] == "service_healthy"
    probe = " ".join(services["web"]["healthcheck"]["test"])
    match = re.search(r"http://127\.0\.0\.1:8000(/[^'\"]*)", probe)
    assert match
    path = match.group(1)
    assert resolve(path).url_name == "api-health"


def test_health_path_is_exempt_from_the_https_redirect(compose):
    from django.conf import settings

    probe = " ".join(compose["services"]["web"]["healthcheck"]["test"])
    match = re.search(r"http://127\.0\.0\.1:8000/([^'\"]*)", probe)
    assert match
    path = match.group(1)
    assert any(re.search(pattern, path) for pattern in settings.SECURE_REDIRECT_EXEMPT)


def test_dockerfile_builds_the_same_package():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install" in dockerfile
    assert "collectstatic" in dockerfile


def test_the_worker_signs_checkpoints_with_the_key_the_migrate_step_makes(compose):
    from django.conf import settings

    services = compose["services"]
    worker = services["worker"]
    key = worker["environment"]["LEDGER_SIGNING_KEY"]
    checkpoints = worker["environment"]["LEDGER_CHECKPOINT_DIR"]

    def mounts(name: str) -> dict[str, str]:
        return {
            volume.split(":")[1]: volume.split(":")[0]
            for volume in services[name].get("volumes", [])
        }

    key_dir = str(Path(key).parent)
    assert mounts("worker")[key_dir] == mounts("migrate")[key_dir]  # one named volume
    assert f"{key_dir}:ro" in " ".join(worker["volumes"])  # the worker only reads it
    assert f"ledger_keygen {key}" in services["migrate"]["command"]
    assert mounts("worker")[checkpoints] in compose["volumes"]
    # Nothing else holds the key.
    for name in ("web", "beat"):
        assert key_dir not in mounts(name), name
        assert "LEDGER_SIGNING_KEY" not in services[name]["environment"], name
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert key_dir in dockerfile and checkpoints in dockerfile  # owned by the app's user
    assert settings.CELERY_BEAT_SCHEDULE["ledger-checkpoint-every-15-minutes"]
