"""Builds NATS KV keys from free-form ids, exactly as the TypeScript kit's ``keys.ts`` does.

KV keys allow only ``[-/_=.A-Za-z0-9]`` with ``.`` separating tokens, and execution or instance ids may hold
anything. Each token keeps letters, digits, ``-`` and ``_`` and escapes every other UTF-8 byte as ``=HH``
(upper-case hex), so two different ids never share a key (plain replacement by ``_`` would merge them). An
empty token is ``=``, which is unambiguous because ``=`` is otherwise always followed by two hex digits.
Every kit must produce the same key for the same tokens: a retried Create may land on a sidecar in another
language.
"""

from __future__ import annotations

_KEEP = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def escape_token(token: str) -> str:
    """One escaped key token."""
    if token == "":
        return "="
    return "".join(chr(byte) if byte in _KEEP else f"={byte:02X}" for byte in token.encode("utf-8"))


def kv_key(*tokens: str | int) -> str:
    """A KV key from tokens, each escaped: ``kv_key("sensor", "run.1", 2)`` is ``sensor.run=2E1.2``."""
    return ".".join(escape_token(str(token)) for token in tokens)
