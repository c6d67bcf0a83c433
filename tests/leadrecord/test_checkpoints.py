"""Signed checkpoints: the ledger's head signed outside the database, and checked later.

The tamper tests play an attacker with the owner's rights: cut the tail with the
triggers lifted, or rewrite an early entry and recompute every later hash with
the application's own hashing. ``verify_ledger`` alone says ok to both;
``verify_ledger --checkpoint`` exits 1 naming why.
"""

import base64
import json
import logging
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from leadrecord.checkpoints import checkpoint_message
from leadrecord.ledger_guard import LEDGER_TABLE
from leadrecord.models import LedgerCheckpoint
from leadrecord.roles import Role
from leadrecord.tasks import ledger_checkpoint_task

from ..ledger_helpers import append_entries, rewrite_recomputing_hashes, tamper

pytestmark = pytest.mark.django_db


@pytest.fixture
def signing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[dict[str, Any]]:
    """A signing key and a checkpoint directory, in the settings."""
    key = tmp_path / "keys" / "ledger.key"
    call_command("ledger_keygen", str(key))
    public_key = capsys.readouterr().out.strip()
    directory = tmp_path / "checkpoints"
    with override_settings(LEDGER_SIGNING_KEY=str(key), LEDGER_CHECKPOINT_DIR=directory):
        yield {"key": key, "public_key": public_key, "directory": directory}


def checkpoint_now(capsys: pytest.CaptureFixture[str]) -> Path:
    call_command("ledger_checkpoint")
    return Path(capsys.readouterr().out.strip().rsplit(": ", 1)[1])


def verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """verify_ledger's exit status and what it said."""
    try:
        call_command("verify_ledger", *args)
    except SystemExit as exit_:
        captured = capsys.readouterr()
        return int(exit_.code or 0), captured.out + captured.err
    captured = capsys.readouterr()
    return 0, captured.out + captured.err


# --- keys ------------------------------------------------------------------------------


def test_keygen_writes_a_private_key_only_its_owner_reads_and_prints_the_public_key(signing):
    key: Path = signing["key"]
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(base64.b64decode(signing["public_key"], validate=True)) == 32


def test_keygen_never_overwrites_a_key(signing):
    before = signing["key"].read_bytes()
    with pytest.raises(CommandError, match="exists"):
        call_command("ledger_keygen", str(signing["key"]))
    assert signing["key"].read_bytes() == before


# --- signing ---------------------------------------------------------------------------


def test_a_checkpoint_signs_the_head_and_is_written_outside_the_database(signing, capsys):
    entries = append_entries(4)
    path = checkpoint_now(capsys)
    assert path.parent == signing["directory"]
    body = json.loads(path.read_text())
    assert body["seq"] == 4
    assert body["hash"] == entries[-1].hash
    assert body["public_key"] == signing["public_key"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # public, unlike the key
    assert not [p for p in path.parent.iterdir() if p != path]  # no temporary file left
    stored = LedgerCheckpoint.objects.get()
    assert (stored.seq, stored.hash, stored.signature) == (4, body["hash"], body["signature"])
    assert verify(capsys, "--checkpoint", str(path)) == (
        0,
        f"ledger ok: 4 entries; extends checkpoint {path} (entry 4, signed {body['signed_at']})\n",
    )


def test_an_unchanged_head_is_not_signed_twice_and_a_grown_one_is(signing, capsys):
    append_entries(2)
    first = checkpoint_now(capsys)
    again = checkpoint_now(capsys)
    assert again == first
    assert LedgerCheckpoint.objects.count() == 1
    first.unlink()  # a lost file is written again from the stored checkpoint
    assert checkpoint_now(capsys) == first and first.is_file()
    append_entries(1)
    grown = checkpoint_now(capsys)
    assert grown != first
    assert LedgerCheckpoint.objects.count() == 2
    assert sorted(p.name for p in signing["directory"].iterdir()) == sorted(
        [first.name, grown.name]
    )


def test_the_empty_ledger_can_be_checkpointed(signing, capsys):
    path = checkpoint_now(capsys)
    assert json.loads(path.read_text())["seq"] == 0
    append_entries(2)
    assert verify(capsys, "--checkpoint", str(path))[0] == 0


def test_without_a_key_the_command_says_how_to_make_one():
    with override_settings(LEDGER_SIGNING_KEY=""), pytest.raises(CommandError, match="keygen"):
        call_command("ledger_checkpoint")
    assert not LedgerCheckpoint.objects.exists()


@pytest.mark.parametrize("content", [b"", b"not a key", b"-----BEGIN PRIVATE KEY-----\nxx\n"])
def test_a_bad_or_missing_key_file_is_refused_by_name(tmp_path, content):
    key = tmp_path / "bad.key"
    key.write_bytes(content)
    for path in (key, tmp_path / "missing.key"):
        with (
            override_settings(LEDGER_SIGNING_KEY=str(path), LEDGER_CHECKPOINT_DIR=tmp_path),
            pytest.raises(CommandError, match=re.escape(str(path))),
        ):
            call_command("ledger_checkpoint")
    assert not LedgerCheckpoint.objects.exists()


def test_a_key_of_another_kind_is_refused(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = tmp_path / "ec.key"
    key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with (
        override_settings(LEDGER_SIGNING_KEY=str(key), LEDGER_CHECKPOINT_DIR=tmp_path),
        pytest.raises(CommandError, match="not an Ed25519 key"),
    ):
        call_command("ledger_checkpoint")


# --- the tamper tests ------------------------------------------------------------------


def test_a_truncated_tail_passes_verify_but_not_the_checkpoint(signing, capsys):
    append_entries(6)
    path = checkpoint_now(capsys)
    tamper(f"DELETE FROM {LEDGER_TABLE} WHERE seq > 3")
    assert verify(capsys) == (0, "ledger ok: 3 entries\n")
    status, said = verify(capsys, "--checkpoint", str(path))
    assert status == 1
    assert "truncated: the ledger ends at entry 3, but entry 6 was signed" in said


def test_a_rewrite_with_every_later_hash_recomputed_is_caught(signing, capsys):
    append_entries(8)
    path = checkpoint_now(capsys)
    rewrite_recomputing_hashes(2, "nothing to see here")
    assert verify(capsys) == (0, "ledger ok: 8 entries\n")
    status, said = verify(capsys, "--checkpoint", str(path))
    assert status == 1
    assert "rewritten: entry 8 has hash" in said
    assert "an entry at or before 8 was changed" in said


def test_a_rewrite_that_breaks_the_chain_is_named_by_the_chain_check(signing, capsys):
    append_entries(3)
    path = checkpoint_now(capsys)
    tamper(f"UPDATE {LEDGER_TABLE} SET reason = 'edited' WHERE seq = 2")
    status, said = verify(capsys, "--checkpoint", str(path))
    assert status == 1
    assert "ledger broken at entry 2" in said


def test_an_untampered_ledger_that_grew_extends_every_earlier_checkpoint(signing, capsys):
    append_entries(2)
    first = checkpoint_now(capsys)
    append_entries(3)
    second = checkpoint_now(capsys)
    append_entries(4)
    status, said = verify(capsys, "--checkpoint", str(first), "--checkpoint", str(second))
    assert status == 0, said
    assert said.startswith("ledger ok: 9 entries; extends checkpoint")
    assert "(entry 2," in said and "(entry 5," in said


def _edited(path: Path, tmp_path: Path, **changes: Any) -> Path:
    body = json.loads(path.read_text())
    body.update(changes)
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(body))
    return edited


def test_a_checkpoint_with_a_bad_signature_is_refused(signing, capsys, tmp_path):
    entries = append_entries(5)
    path = checkpoint_now(capsys)
    body = json.loads(path.read_text())
    flipped = bytearray(base64.b64decode(body["signature"]))
    flipped[0] ^= 1
    for changes in (
        {"seq": 3, "hash": entries[2].hash},  # claims less was signed
        {"signed_at": "2030-01-01T00:00:00.000000+00:00"},
        {"signature": base64.b64encode(bytes(flipped)).decode()},
        {"signature": "not base64!"},
        {"signature": base64.b64encode(b"short").decode()},
    ):
        status, said = verify(capsys, "--checkpoint", str(_edited(path, tmp_path, **changes)))
        assert status == 1, changes
        assert "refused: bad signature" in said, changes


def test_a_checkpoint_signed_by_another_key_is_refused_when_a_key_is_expected(
    signing, capsys, tmp_path
):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    append_entries(2)
    path = checkpoint_now(capsys)
    body = json.loads(path.read_text())
    # A forger with their own key signs the head they like (here: the real one).
    forger = Ed25519PrivateKey.generate()
    message = checkpoint_message(seq=body["seq"], hash=body["hash"], signed_at=body["signed_at"])
    forged = _edited(
        path,
        tmp_path,
        signature=base64.b64encode(forger.sign(message)).decode(),
        public_key=base64.b64encode(
            forger.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        ).decode(),
    )
    status, said = verify(capsys, "--checkpoint", str(forged))
    assert status == 1
    assert "signed by another key" in said and signing["public_key"] in said
    status, said = verify(capsys, "--checkpoint", str(path), "--public-key", body["public_key"])
    assert status == 0, said
    with override_settings(LEDGER_SIGNING_KEY=""):
        # An auditor pins the key they trust.
        status, said = verify(
            capsys, "--checkpoint", str(forged), "--public-key", signing["public_key"]
        )
        assert status == 1 and "signed by another key" in said


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b"[]",
        b'{"seq": 1}',
        b'{"seq": "1", "hash": "", "signed_at": "", "signature": "", "public_key": ""}',
        b'{"seq": -1, "hash": "", "signed_at": "", "signature": "", "public_key": ""}',
        b'{"seq": 1, "hash": 5, "signed_at": "", "signature": "", "public_key": ""}',
        b"\xff\xfe",
        b"{" + b" " * 70_000 + b"}",
    ],
)
def test_a_file_that_is_no_checkpoint_is_refused_by_name(tmp_path, capsys, content):
    path = tmp_path / "checkpoint.json"
    path.write_bytes(content)
    status, said = verify(capsys, "--checkpoint", str(path))
    assert status == 1
    assert f"checkpoint {path} refused: " in said


def test_a_missing_checkpoint_file_is_refused_by_name(tmp_path, capsys):
    status, said = verify(capsys, "--checkpoint", str(tmp_path / "nope.json"))
    assert status == 1 and "cannot read" in said


# --- Celery ----------------------------------------------------------------------------


def test_the_task_without_a_key_logs_and_skips(caplog):
    with override_settings(LEDGER_SIGNING_KEY=""), caplog.at_level(logging.WARNING):
        result = ledger_checkpoint_task.delay().get()
    assert result["signed"] is False
    assert "LEDGER_SIGNING_KEY is not set" in caplog.text
    assert not LedgerCheckpoint.objects.exists()


def test_the_task_with_an_unreadable_key_logs_and_skips(tmp_path, caplog):
    with (
        override_settings(LEDGER_SIGNING_KEY=str(tmp_path / "gone.key")),
        caplog.at_level(logging.ERROR),
    ):
        result = ledger_checkpoint_task.delay().get()
    assert result["signed"] is False
    assert "ledger checkpoint failed" in caplog.text


def test_the_task_signs_and_is_safe_to_run_twice(signing):
    append_entries(3)
    first = ledger_checkpoint_task.delay().get()
    second = ledger_checkpoint_task.delay().get()
    assert first["signed"] is True and second["signed"] is False
    assert first["seq"] == second["seq"] == 3
    assert LedgerCheckpoint.objects.count() == 1


def test_beat_signs_a_checkpoint_every_15_minutes():
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["ledger-checkpoint-every-15-minutes"]
    assert entry["task"] == "leadrecord.ledger_checkpoint"
    assert entry["schedule"] == 15 * 60


# --- the API ---------------------------------------------------------------------------


def test_the_latest_checkpoint_is_served_to_those_who_may_read_it(
    signing, capsys, users, api_client_for, tmp_path
):
    append_entries(2)
    checkpoint_now(capsys)
    append_entries(1)
    path = checkpoint_now(capsys)
    for role in (Role.MANAGER, Role.PRIVACY_OFFICER, Role.INTEGRATION):
        response = api_client_for(users[role]).get("/api/v1/ledger/checkpoints/latest/")
        assert response.status_code == 200, role
        body = response.json()
        assert set(body) == {"seq", "hash", "signed_at", "signature", "public_key"}
        assert body["seq"] == 3
        assert body["public_key"] == signing["public_key"]
        assert body == {k: v for k, v in json.loads(path.read_text()).items() if k != "format"}
    # The answer, saved by an auditor, is a checkpoint file verify_ledger takes.
    saved = tmp_path / "from-the-api.json"
    saved.write_text(json.dumps(body))
    assert verify(capsys, "--checkpoint", str(saved))[0] == 0


def test_other_roles_and_anonymous_callers_get_no_checkpoint(
    signing, capsys, users, api_client_for
):
    from rest_framework.test import APIClient

    append_entries(1)
    checkpoint_now(capsys)
    for role in (Role.MARKETER, Role.SALES_REP):
        response = api_client_for(users[role]).get("/api/v1/ledger/checkpoints/latest/")
        assert response.status_code == 403, role
        assert "hash" not in response.json()
    assert APIClient().get("/api/v1/ledger/checkpoints/latest/").status_code == 401


def test_before_any_checkpoint_the_answer_is_a_clear_404(users, api_client_for):
    response = api_client_for(users[Role.MANAGER]).get("/api/v1/ledger/checkpoints/latest/")
    assert response.status_code == 404
    error = response.json()["errors"][0]
    assert error["code"] == "not_found"
    assert "No checkpoint has been signed yet" in error["detail"]


def test_the_checkpoint_endpoint_refuses_writes(users, api_client_for):
    client = api_client_for(users[Role.MANAGER])
    for method in ("post", "put", "patch", "delete"):
        response = getattr(client, method)("/api/v1/ledger/checkpoints/latest/", {})
        assert response.status_code in (403, 405), method
    assert not LedgerCheckpoint.objects.exists()
