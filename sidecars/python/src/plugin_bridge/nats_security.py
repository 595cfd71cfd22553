"""How a sidecar proves who it is to NATS and which NATS it trusts: a ``.creds`` file (a user JWT and its NKey
seed, for NATS in operator mode) and TLS files (the CA that signed the server's certificate, and a client
certificate and key for a server that asks for one).

The settings carry the names of the host's own (``natsCredentials``, ``natsTlsCa``, ``natsTlsCert``,
``natsTlsKey``), the same in every kit. They are checked at start, so a mistake in the deployment stops the
sidecar naming the variable instead of failing every connect in the background. No file's content goes into a
log line or an error.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

CREDENTIALS_ENV = "PLUGIN_BRIDGE_NATS_CREDENTIALS"
TLS_CA_ENV = "PLUGIN_BRIDGE_NATS_TLS_CA"
TLS_CERT_ENV = "PLUGIN_BRIDGE_NATS_TLS_CERT"
TLS_KEY_ENV = "PLUGIN_BRIDGE_NATS_TLS_KEY"


@dataclass(frozen=True)
class NatsSecurity:
    """What :class:`~plugin_bridge.nats_link.NatsLink` passes to nats-py's ``connect`` besides the servers."""

    #: The .creds file's path: nats-py reads it again at every connect, so a renewed file is used from the next.
    credentials: Optional[str] = None
    #: TLS to NATS; None for a plain connection.
    tls: Optional[ssl.SSLContext] = None

    def connect_options(self) -> Dict[str, Any]:
        options: Dict[str, Any] = {}
        if self.credentials is not None:
            options["user_credentials"] = self.credentials
        if self.tls is not None:
            options["tls"] = self.tls
        return options


def _check_readable(variable: str, path: str) -> None:
    try:
        with open(path, "rb") as file:
            file.read()
    except OSError as error:
        raise ValueError(f"{variable}: cannot read {path}: {error.strerror or error}") from None


def resolve_nats_security(
    credentials: Optional[str],
    tls_ca: Optional[str],
    tls_cert: Optional[str],
    tls_key: Optional[str],
    environ: Mapping[str, str],
) -> NatsSecurity:
    """The settings from the options, each falling back to its environment variable (an empty value counts as
    unset). Raises ValueError for a certificate without its key (or a key without its certificate), for a file that
    cannot be read and for TLS files that are not PEM, naming the variable and the path."""

    def setting(value: Optional[str], variable: str) -> Optional[str]:
        chosen = value if value is not None else environ.get(variable)
        return chosen or None

    credentials = setting(credentials, CREDENTIALS_ENV)
    tls_ca = setting(tls_ca, TLS_CA_ENV)
    tls_cert = setting(tls_cert, TLS_CERT_ENV)
    tls_key = setting(tls_key, TLS_KEY_ENV)
    if tls_cert and not tls_key:
        raise ValueError(f"a NATS client certificate needs its key: set {TLS_KEY_ENV} (or the nats_tls_key option)")
    if tls_key and not tls_cert:
        raise ValueError(f"a NATS client key needs its certificate: set {TLS_CERT_ENV} (or the nats_tls_cert option)")
    files = ((CREDENTIALS_ENV, credentials), (TLS_CA_ENV, tls_ca), (TLS_CERT_ENV, tls_cert), (TLS_KEY_ENV, tls_key))
    for variable, path in files:
        if path:
            _check_readable(variable, path)

    tls: Optional[ssl.SSLContext] = None
    if tls_ca or tls_cert:
        # Either one turns TLS on; without a CA, the system's roots decide whom to trust.
        try:
            tls = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=tls_ca)
        except ssl.SSLError as error:
            raise ValueError(f"{TLS_CA_ENV}: {tls_ca} holds no PEM certificate: {error.reason or error}") from None
        if tls_cert and tls_key:
            try:
                tls.load_cert_chain(tls_cert, tls_key)
            except ssl.SSLError as error:
                raise ValueError(
                    f"{TLS_CERT_ENV} and {TLS_KEY_ENV}: {tls_cert} and {tls_key} are not a PEM certificate and its key: "
                    f"{error.reason or error}"
                ) from None
    return NatsSecurity(credentials=credentials, tls=tls)
