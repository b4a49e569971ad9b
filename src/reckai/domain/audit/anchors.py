"""Signed checkpoints of every chain's head, kept outside the database (docs/audit.md, "Anchors").

The chain alone cannot show rows deleted from its end when the chain head is moved back with them
(a superuser can do both). A `HeadCheckpoint` records, at one moment, each chain's last sequence
and hash, signed with the audit key (HMAC, domain-separated from row hashes by its `kind`), and is
written to storage the application cannot rewrite. Verification then compares the database with
the latest checkpoint: a chain that ends before the anchored sequence, or whose row at that
sequence has another hash, was truncated or rewritten.

Standard library only.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

CHECKPOINT_KIND = "audit-head-checkpoint"
CHECKPOINT_VERSION = 1


class InvalidCheckpointDocument(ValueError):
    """Stored checkpoint text that is not a checkpoint this application wrote."""


@dataclass(frozen=True)
class AnchoredHead:
    chain_key: uuid.UUID
    sequence: int
    hash: str


@dataclass(frozen=True)
class HeadCheckpoint:
    written_at: dt.datetime  # naive UTC
    key_id: str
    heads: tuple[AnchoredHead, ...]
    signature: str

    def signed_fields(self) -> dict[str, Any]:
        return {
            "kind": CHECKPOINT_KIND,
            "version": CHECKPOINT_VERSION,
            "written_at": self.written_at,
            "key_id": self.key_id,
            "heads": [[str(head.chain_key), head.sequence, head.hash] for head in self.heads],
        }

    def head_of(self, chain_key: uuid.UUID) -> AnchoredHead | None:
        return next((head for head in self.heads if head.chain_key == chain_key), None)

    def to_json(self) -> str:
        """One line of JSON (the append-only file holds one checkpoint per line)."""
        return json.dumps({
            "kind": CHECKPOINT_KIND,
            "version": CHECKPOINT_VERSION,
            "written_at": _timestamp(self.written_at),
            "key_id": self.key_id,
            "heads": [[str(head.chain_key), head.sequence, head.hash] for head in self.heads],
            "signature": self.signature,
        }, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> HeadCheckpoint:
        try:
            document = json.loads(text)
            if document.get("kind") != CHECKPOINT_KIND or document.get("version") != CHECKPOINT_VERSION:
                raise InvalidCheckpointDocument("not an audit head checkpoint")
            written_at = dt.datetime.strptime(document["written_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
            heads = tuple(AnchoredHead(uuid.UUID(str(key)), int(sequence), str(hash_))
                          for key, sequence, hash_ in document["heads"])
            return cls(written_at, str(document["key_id"]), heads, str(document["signature"]))
        except InvalidCheckpointDocument:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidCheckpointDocument(f"unreadable checkpoint ({type(exc).__name__})") from None


def _timestamp(moment: dt.datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
