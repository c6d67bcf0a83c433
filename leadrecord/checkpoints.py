"""Signed checkpoints of the ledger's head: tamper evidence kept outside the database.

A checkpoint says "entry ``seq`` had hash ``hash`` at ``signed_at``", signed
with an Ed25519 key the database never sees. Each entry's hash covers every
entry before it, so a ledger that still holds entry ``seq`` with that hash
holds exactly the entries that were signed; one that lost its tail, or had an
entry changed (even with every later hash recomputed), does not. Copies kept
where the database's users cannot reach (the checkpoint directory, an
auditor's archive) make that checkable at any later time by
``verify_ledger --checkpoint FILE``.

The signed message is the UTF-8 text ``leadrecord-ledger-checkpoint:v1:{seq}:{hash}:{signed_at}``
(docs/ledger-integrity.md shows how to check it without this code).

Signing appends nothing to the ledger: a checkpoint is a statement about the
record, not a change to it, and an entry of its own would move the head it signs.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.db import transaction
from django.utils import timezone

from .ledger import GENESIS_HASH
from .models import LedgerCheckpoint, LedgerEntry

CHECKPOINT_FORMAT = "leadrecord-ledger-checkpoint/1"
_MESSAGE_PREFIX = "leadrecord-ledger-checkpoint:v1"
# A checkpoint file is a few hundred bytes; anything far larger is not one.
_MAX_FILE_BYTES = 64 * 1024


class CheckpointError(Exception):
    """A key or checkpoint that cannot be used; the message says why."""


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    signed_at: str
    signature: str
    public_key: str

    def as_json(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "seq": self.seq,
            "hash": self.hash,
            "signed_at": self.signed_at,
            "signature": self.signature,
            "public_key": self.public_key,
        }

    @property
    def file_name(self) -> str:
        stamp = "".join(ch for ch in self.signed_at[:26] if ch.isdigit())
        return f"ledger-checkpoint-{self.seq:012d}-{stamp}.json"


def checkpoint_message(*, seq: int, hash: str, signed_at: str) -> bytes:
    """The bytes that are signed."""
    return f"{_MESSAGE_PREFIX}:{seq}:{hash}:{signed_at}".encode()


def _public_key_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def signing_key_create(path: Path) -> str:
    """Write a new Ed25519 private key (PEM, PKCS#8, readable by its owner only) at ``path``;
    returns its public key in base64. Never overwrites an existing file."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as error:
        raise CheckpointError(
            f"{path} exists: a new key would not verify the checkpoints signed with it"
        ) from error
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)
    return _public_key_text(key.public_key())


def signing_key_load(path: str | Path) -> Ed25519PrivateKey:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise CheckpointError(f"cannot read the signing key {path}: {error.strerror}") from error
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{path} is not an unencrypted PEM private key") from error
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"{path} is not an Ed25519 key (make one with ledger_keygen)")
    return key


def signing_key_public(path: str | Path) -> str:
    return _public_key_text(signing_key_load(path).public_key())


def _ledger_head() -> tuple[int, str]:
    last = LedgerEntry.objects.order_by("-seq").values_list("seq", "hash").first()
    return (last[0], last[1]) if last else (0, GENESIS_HASH)


def _checkpoint_of(row: LedgerCheckpoint) -> Checkpoint:
    return Checkpoint(row.seq, row.hash, row.signed_at, row.signature, row.public_key)


def _file_write(directory: Path, checkpoint: Checkpoint) -> Path:
    """Write the checkpoint file whole or not at all (a temporary file, then a rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / checkpoint.file_name
    if target.exists():
        return target
    text = json.dumps(checkpoint.as_json(), indent=2) + "\n"
    with tempfile.NamedTemporaryFile(
        "w", dir=directory, prefix=".checkpoint-", suffix=".tmp", delete=False
    ) as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    # Checkpoints are public (their copies are the point); only the key is secret.
    Path(out.name).chmod(0o644)
    Path(out.name).replace(target)
    return target


@dataclass(frozen=True)
class CheckpointSigned:
    checkpoint: Checkpoint
    path: Path
    created: bool


def ledger_checkpoint_sign(*, key_path: str | Path, directory: Path) -> CheckpointSigned:
    """Sign the ledger's current head, store it and write it under ``directory``.

    When the latest checkpoint already signs this head with this key, nothing new
    is signed (its file is written again if it went missing): running twice, or
    with no change in between, adds nothing.
    """
    key = signing_key_load(key_path)
    public_key = _public_key_text(key.public_key())
    seq, head_hash = _ledger_head()
    latest = LedgerCheckpoint.objects.order_by("-id").first()
    if latest and (latest.seq, latest.hash, latest.public_key) == (seq, head_hash, public_key):
        checkpoint = _checkpoint_of(latest)
        return CheckpointSigned(checkpoint, _file_write(directory, checkpoint), created=False)
    signed_at = timezone.now().isoformat(timespec="microseconds")
    message = checkpoint_message(seq=seq, hash=head_hash, signed_at=signed_at)
    signature = base64.b64encode(key.sign(message)).decode("ascii")
    checkpoint = Checkpoint(seq, head_hash, signed_at, signature, public_key)
    # The row and the file together: a file that cannot be written leaves no row.
    with transaction.atomic():
        LedgerCheckpoint.objects.create(
            seq=seq,
            hash=head_hash,
            signed_at=signed_at,
            signature=signature,
            public_key=public_key,
        )
        path = _file_write(directory, checkpoint)
    return CheckpointSigned(checkpoint, path, created=True)


def ledger_checkpoint_latest() -> Checkpoint | None:
    row = LedgerCheckpoint.objects.order_by("-id").first()
    return _checkpoint_of(row) if row else None


def checkpoint_read(path: Path) -> Checkpoint:
    """A checkpoint file as ``ledger_checkpoint`` writes it (or as the API serves it)."""
    try:
        with path.open("rb") as source:
            data = source.read(_MAX_FILE_BYTES + 1)
    except OSError as error:
        raise CheckpointError(f"cannot read {path}: {error.strerror}") from error
    if len(data) > _MAX_FILE_BYTES:
        raise CheckpointError(f"{path} is not a checkpoint (larger than {_MAX_FILE_BYTES} bytes)")
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, ValueError) as error:
        raise CheckpointError(f"{path} is not a checkpoint (not JSON: {error})") from error
    if not isinstance(body, dict):
        raise CheckpointError(f"{path} is not a checkpoint (not a JSON object)")
    missing = [
        name for name in ("seq", "hash", "signed_at", "signature", "public_key") if name not in body
    ]
    if missing:
        raise CheckpointError(f"{path} is not a checkpoint (missing {', '.join(missing)})")
    seq = body["seq"]
    texts = [body[name] for name in ("hash", "signed_at", "signature", "public_key")]
    if type(seq) is not int or seq < 0 or not all(isinstance(text, str) for text in texts):
        raise CheckpointError(
            f"{path} is not a checkpoint (seq must be a whole number, the rest text)"
        )
    return Checkpoint(seq, *texts)


def _base64(text: str, size: int, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise CheckpointError(f"bad signature: the {what} is not base64") from error
    if len(raw) != size:
        raise CheckpointError(f"bad signature: the {what} is not {size} bytes")
    return raw


def checkpoint_signature_check(checkpoint: Checkpoint, *, expected_public_key: str = "") -> None:
    """Raise ``CheckpointError`` unless the checkpoint's signature holds (under the expected
    key, when one is given)."""
    if expected_public_key and checkpoint.public_key != expected_public_key:
        raise CheckpointError(
            f"signed by another key ({checkpoint.public_key}) than the expected "
            f"{expected_public_key}"
        )
    public_key = Ed25519PublicKey.from_public_bytes(
        _base64(checkpoint.public_key, 32, "public key")
    )
    signature = _base64(checkpoint.signature, 64, "signature")
    message = checkpoint_message(
        seq=checkpoint.seq, hash=checkpoint.hash, signed_at=checkpoint.signed_at
    )
    try:
        public_key.verify(signature, message)
    except InvalidSignature as error:
        raise CheckpointError(
            "bad signature: it does not match the checkpoint's seq, hash and signed_at "
            "under its public key"
        ) from error


def ledger_extends(checkpoint: Checkpoint) -> str:
    """Why the ledger does not extend ``checkpoint`` (a signature already checked); "" if it does.

    Holding entry ``seq`` with the signed hash is enough: that hash covers every
    entry up to it, and ``ledger_verify`` checks the entries after it.
    """
    if checkpoint.seq == 0:
        return "" if checkpoint.hash == GENESIS_HASH else "the checkpoint of entry 0 is malformed"
    found = LedgerEntry.objects.filter(seq=checkpoint.seq).values_list("hash", flat=True).first()
    if found is None:
        head = LedgerEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
        return (
            f"truncated: the ledger ends at entry {head}, but entry {checkpoint.seq} "
            f"was signed at {checkpoint.signed_at}"
        )
    if found != checkpoint.hash:
        return (
            f"rewritten: entry {checkpoint.seq} has hash {found}, but {checkpoint.hash} was "
            f"signed at {checkpoint.signed_at}; an entry at or before {checkpoint.seq} was "
            "changed, and the hashes after it recomputed"
        )
    return ""
