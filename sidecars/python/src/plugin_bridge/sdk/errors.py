"""The SDK's one error type. Calls to the host and checks the SDK makes on its own (validating ``custom``,
finding a task type's specification) fail the same way, so a caller handles a refusal alike whether the host or
the SDK spoke."""

from __future__ import annotations

import grpc


class BridgeError(Exception):
    """A failed call to the host: ``code`` is the gRPC status code, ``message`` the host's explanation."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


def from_rpc_error(error: grpc.RpcError) -> BridgeError:
    """The BridgeError for a failed grpcio call; a bare RpcError (no status attached) counts as UNKNOWN."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else str(error)
    return BridgeError(code or grpc.StatusCode.UNKNOWN, details or "")
