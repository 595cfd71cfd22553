"""A sidecar's identity: the token a host issued it (``PLUGIN_BRIDGE_TOKEN``) and the name it was issued for
(``PLUGIN_BRIDGE_TOKEN_ID``). With one, the sidecar signs every announcement it writes to ``pb_plugins`` and
every status it pushes, so a host that requires sidecar authentication routes only to instances holding a token
it knows, and applies only their pushes. The host checks the same bytes the same way in every language
(``proto/pluginbridge/v1/coordination.proto``, PluginAnnouncement).

The token is a secret: it stays inside :class:`SidecarToken` (kept out of its repr) and never goes to a log, to
NATS, into an error or a span; only HMACs made with it leave the process.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Dict, Mapping, Optional

TOKEN_ENV = "PLUGIN_BRIDGE_TOKEN"
TOKEN_ID_ENV = "PLUGIN_BRIDGE_TOKEN_ID"
#: The NATS message headers of a signed push.
KEY_ID_HEADER = "Pb-Key-Id"
SIGNATURE_HEADER = "Pb-Signature"

# Each signed thing has its own prefix, so a signature made for one can never pass as the other.
_ANNOUNCEMENT_PREFIX = b"pbv1"
_PUSH_PREFIX = b"pbv1push"


class SidecarToken:
    """Signs with a token; knows the token's id. Its repr shows the id only."""

    __slots__ = ("key_id", "_key")

    def __init__(self, key_id: str, token: str) -> None:
        self.key_id = key_id
        # Keyed with the token's text as the sidecar received it, as its UTF-8 bytes (the host does the same).
        self._key = token.encode("utf-8")

    def __repr__(self) -> str:
        return f"SidecarToken(key_id={self.key_id!r})"

    def sign_announcement(self, ttl_seconds: int, signed_instance: bytes) -> bytes:
        """HMAC-SHA256 over ``"pbv1" || ttl_seconds (4 bytes, big-endian) || signed_instance``: the TTL is
        signed too, so nobody can stretch how long a stolen announcement stays live."""
        message = _ANNOUNCEMENT_PREFIX + ttl_seconds.to_bytes(4, "big") + signed_instance
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def push_headers(self, payload: bytes) -> Dict[str, str]:
        """The headers of a push whose published bytes are ``payload``: the key id, and the lowercase hex
        HMAC-SHA256 over ``"pbv1push" || payload``."""
        signature = hmac.new(self._key, _PUSH_PREFIX + payload, hashlib.sha256).hexdigest()
        return {KEY_ID_HEADER: self.key_id, SIGNATURE_HEADER: signature}


def resolve_token(
    token: Optional[str], token_id: Optional[str], environ: Mapping[str, str]
) -> Optional[SidecarToken]:
    """The sidecar's token from the options, each falling back to its environment variable; None when neither
    a token nor an id is given. One without the other is a mistake made when the sidecar was deployed: refused
    here, at start, naming what is missing (never the token itself)."""
    secret = token if token is not None else environ.get(TOKEN_ENV)
    key_id = token_id if token_id is not None else environ.get(TOKEN_ID_ENV)
    if not secret and not key_id:
        return None
    if not key_id:
        raise ValueError(
            f"a sidecar token was given without its id: set {TOKEN_ID_ENV} (or the token_id option) "
            "to the name the token was issued for"
        )
    if not secret:
        raise ValueError(f"a sidecar token id was given without its token: set {TOKEN_ENV} (or the token option)")
    # The id travels as a NATS header value: one line of visible ASCII.
    if not all("!" <= c <= "~" for c in key_id):
        raise ValueError(f"token id {key_id!r} must be visible ASCII characters without spaces")
    return SidecarToken(key_id, secret)
