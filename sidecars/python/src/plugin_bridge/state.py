"""A core plugin's state (Flyte's PluginStateReader and PluginStateWriter) and what its Handle returns.

The host keeps the state with the execution and passes it back on every call of the attempt, so the plugin
itself may hold nothing between calls. It is opaque bytes to the host; ``version`` names the layout of ``data``
so a newer plugin can tell an old state apart and convert or refuse it. Most plugins keep a JSON value or a
little text: :meth:`PluginState.of_json` and :meth:`PluginState.of_text` encode it the way the other kits do
(compact UTF-8 JSON, UTF-8 text), so a state written by one kit reads the same in another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional, Union

from pluginbridge.v1 import plugin_pb2

from .phases import PhaseResult

_MAX_VERSION = 2**32 - 1


@dataclass(frozen=True)
class PluginState:
    """One attempt's state: ``version`` (0 to 2**32-1, the proto's uint32) says how to read ``data``."""

    version: int
    data: bytes = b""

    def __post_init__(self) -> None:
        # Checked here so a bad state fails inside the plugin's own call (INTERNAL with this message), not as an
        # opaque serialization error after it returned.
        if isinstance(self.version, bool) or not isinstance(self.version, int) or not 0 <= self.version <= _MAX_VERSION:
            raise ValueError(f"PluginState.version must be an int from 0 to {_MAX_VERSION}, not {self.version!r}")
        if not isinstance(self.data, bytes):
            raise ValueError("PluginState.data must be bytes; PluginState.of_json and of_text encode other values")

    @classmethod
    def of_json(cls, value: Any, version: int = 1) -> "PluginState":
        """A state holding ``value`` as compact UTF-8 JSON."""
        return cls(version, json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))

    @classmethod
    def of_text(cls, text: str, version: int = 1) -> "PluginState":
        """A state holding ``text`` as UTF-8."""
        return cls(version, text.encode("utf-8"))

    def as_json(self) -> Any:
        """``data`` parsed as JSON; raises ValueError when it is not."""
        return json.loads(self.data.decode("utf-8"))

    def as_text(self) -> str:
        """``data`` decoded as UTF-8; raises ValueError (UnicodeDecodeError) when it is not."""
        return self.data.decode("utf-8")


@dataclass
class HandleResult:
    """What Handle returns: the phase (with the outputs on PHASE_SUCCESS) and the attempt's new state; a ``state``
    of None keeps the state the call got. Returning a bare :class:`PhaseResult` means the same as no new state."""

    phase: PhaseResult
    state: Optional[PluginState] = None


def state_of(
    request: Union[plugin_pb2.HandleRequest, plugin_pb2.AbortRequest, plugin_pb2.FinalizeRequest],
) -> Optional[PluginState]:
    """The state a request carries, or None when it carries none (an attempt's first Handle, or an Abort before it)."""
    if not request.HasField("state"):
        return None
    return PluginState(request.state.version, request.state.data)


def state_message(state: PluginState) -> plugin_pb2.PluginState:
    """The wire form of a state."""
    return plugin_pb2.PluginState(version=state.version, data=state.data)
