"""The hash chain every event is a link of: its genesis, canonical JSON and the link hash.

Each event's hash covers its content and the hash before it (SPEC §6): whoever writes
events (any store) and whoever checks them (`sladeck verify`) use these, so there is
one definition of what is hashed. `hashlib` is imported only when something is hashed:
the dashboard, which only reads, loads no OpenSSL.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import encode_basestring_ascii as _ascii
from typing import Any

GENESIS = "0" * 64  # the `prev_hash` of the first event

# Built once: `json.dumps` with options builds a new encoder per call (same output).
_HASH_TEXT = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode
_PAYLOAD_TEXT = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode


def canonical_json(value: Any) -> str:
    """Canonical JSON (sorted keys, no spaces) as payloads are stored and hashed."""
    return _PAYLOAD_TEXT(value)


def event_hash(prev_hash: str, event_id: int, incident_id: int, version: int, at: str,
               account: str, name: str | None, kind: str, payload: str) -> str:
    """The chain link: each event's hash covers its content and the previous hash.

    The text hashed is `json.dumps([prev_hash, event_id, ..., payload], ensure_ascii=True,
    separators=(",", ":"))`; for the usual types it is put together here from the same
    string encoder json uses (half the time, which a 100,000-line import notices)."""
    if type(event_id) is int and type(incident_id) is int and type(version) is int and \
            type(prev_hash) is str and type(at) is str and type(account) is str and \
            type(kind) is str and type(payload) is str and (name is None or type(name) is str):
        text = (f"[{_ascii(prev_hash)},{event_id},{incident_id},{version},{_ascii(at)},"
                f"{_ascii(account)},{'null' if name is None else _ascii(name)},{_ascii(kind)},"
                f"{_ascii(payload)}]")
    else:
        text = _HASH_TEXT([prev_hash, event_id, incident_id, version, at, account, name, kind,
                           payload])
    from hashlib import sha256  # only writers hash: the dashboard's reader loads no OpenSSL

    return sha256(text.encode()).hexdigest()


Hasher = Callable[[str, int, int, int, str, str, str], str]


def chain_hasher(account: str, name: str | None) -> Hasher:
    """`event_hash` for many events by one actor: a function of (prev_hash, event_id,
    incident_id, version, at, kind, payload text) giving the same hash, with the parts
    most events share (the actor, the instant, the kind) encoded once."""
    from hashlib import sha256

    if not (type(account) is str and (name is None or type(name) is str)):
        return lambda prev, event_id, incident_id, version, at, kind, payload: event_hash(
            prev, event_id, incident_id, version, at, account, name, kind, payload)
    who = f"{_ascii(account)},{'null' if name is None else _ascii(name)}"
    texts: dict[str, str] = {}  # at or kind → its JSON string

    def link(prev_hash: str, event_id: int, incident_id: int, version: int, at: str, kind: str,
             payload: str) -> str:
        if not (type(event_id) is int and type(incident_id) is int and type(version) is int
                and type(at) is str and type(kind) is str and type(prev_hash) is str):
            return event_hash(prev_hash, event_id, incident_id, version, at, account, name,
                              kind, payload)
        at_json = texts.get(at)
        if at_json is None:
            at_json = texts[at] = _ascii(at)
        kind_json = texts.get(kind)
        if kind_json is None:
            kind_json = texts[kind] = _ascii(kind)
        return sha256(f"[{_ascii(prev_hash)},{event_id},{incident_id},{version},{at_json},"
                      f"{who},{kind_json},{_ascii(payload)}]".encode()).hexdigest()

    return link
