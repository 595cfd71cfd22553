"""TLS to a host served over ``https://``: which certificate authorities to trust, and the client certificate
to present when the host asks for one (mutual TLS).

Each PEM may be given as a file path or as the PEM bytes themselves. Without a CA bundle, grpcio trusts its
default roots (``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`` when set, else the bundle it ships).
"""

from __future__ import annotations

import os
from typing import Optional, Union

import grpc

#: A PEM file's path, or its contents.
Pem = Union[str, "os.PathLike[str]", bytes]


def _read(pem: Optional[Pem], what: str) -> Optional[bytes]:
    if pem is None or isinstance(pem, bytes):
        return pem
    try:
        with open(pem, "rb") as file:
            return file.read()
    except OSError as error:
        raise ValueError(f"cannot read the {what} {os.fspath(pem)!r}: {error.strerror or error}") from None


def channel_credentials(ca: Optional[Pem], cert: Optional[Pem], key: Optional[Pem]) -> grpc.ChannelCredentials:
    """grpcio's credentials for a TLS channel: trusting ``ca`` (else the default roots), presenting ``cert``
    with its ``key`` when both are given."""
    if (cert is None) != (key is None):
        raise ValueError("a client certificate needs its key: give both cert_file and key_file, or neither")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca, "CA bundle"),
        private_key=_read(key, "client key"),
        certificate_chain=_read(cert, "client certificate"),
    )
