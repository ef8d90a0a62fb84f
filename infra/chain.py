"""The audit chain (审计链): each stored event linked to all before it by a hash.

The link at position N is `sha256(link N-1 ‖ canonical bytes of the event stored at N)`, from 32
zero bytes. The canonical bytes are what the store keeps of the event, in one fixed layout: its
position, aggregate id, version and topic, each ended by a unit separator, then the state bytes
exactly as stored. Changing, removing or inserting anything changes every link from there on.
"""

from __future__ import annotations

import hashlib
from uuid import UUID

GENESIS = bytes(32)
_SEPARATOR = "\x1f"


def canonical(position: int, originator_id: UUID, version: int, topic: str, state: bytes) -> bytes:
    return f"{position}{_SEPARATOR}{originator_id.hex}{_SEPARATOR}{version}{_SEPARATOR}{topic}{_SEPARATOR}".encode() + state


def link(previous: bytes, position: int, originator_id: UUID, version: int, topic: str, state: bytes) -> bytes:
    return hashlib.sha256(previous + canonical(position, originator_id, version, topic, state)).digest()
