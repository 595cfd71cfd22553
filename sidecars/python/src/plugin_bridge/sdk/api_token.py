"""The caller's token for a host that requires one: sent as ``authorization: Bearer <token>`` on every call.

It comes from the client's ``token`` option, else from ``PLUGIN_BRIDGE_API_TOKEN``. Never from
``PLUGIN_BRIDGE_TOKEN``: that one is a sidecar's identity towards the hosts, and an SDK running inside a sidecar
must not present it as a caller's.
"""

from __future__ import annotations

from typing import Callable, Mapping, Optional

from .call_metadata import Metadata, replacing

API_TOKEN_ENV = "PLUGIN_BRIDGE_API_TOKEN"


def resolve_api_token(token: Optional[str], environ: Mapping[str, str]) -> Optional[str]:
    """``token`` when given (an empty string: no token, whatever the environment says), else
    $PLUGIN_BRIDGE_API_TOKEN; None when there is none."""
    value = token if token is not None else environ.get(API_TOKEN_ENV)
    if not value:
        return None
    # A header value is one line of visible ASCII; saying so here beats a failure inside grpcio at the first call.
    # The token itself stays out of the message.
    if not all("!" <= c <= "~" for c in value):
        raise ValueError("the API token must be visible ASCII characters without spaces")
    return value


def bearer(token: str) -> Callable[[Metadata], Metadata]:
    """Adds ``authorization: Bearer <token>`` to a call's metadata, replacing an ``authorization`` entry the
    caller set, so the host never sees two."""
    entry = [("authorization", f"Bearer {token}")]
    return lambda metadata: replacing(metadata, entry)
