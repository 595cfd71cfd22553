"""Makes a call run once per execution id and attempt (docs/architecture.md, rule 3): an async plugin's Create
and a core plugin's Finalize. A retry after a crash, a timeout or a duplicate delivery gets the result of the
first run and does nothing twice.

Within one process, concurrent duplicates share one task; across processes and restarts, the result is stored in
the ``pb_creates`` KV bucket under the same key every kit uses (tokens escaped as in :mod:`.keys`), so a retry may
land on any instance in any language: a Create's resource meta under ``<plugin>.<execution>.<attempt>``, a
Finalize's :data:`FINALIZED` marker under ``<plugin>.<execution>.<attempt>.finalize``. Only a run that succeeded
is stored: one that raised is forgotten, so its retry runs again.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Awaitable, Callable, Dict, Optional, Protocol

import grpc
from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from .errors import PluginError
from .keys import kv_key
from .log import KitLogger

#: What a finished Finalize leaves in the store: its presence is what counts (any value means done), the text
#: only tells a human reading the bucket what the key is.
FINALIZED = b"finalized"


def create_key(plugin: str, execution_id: str, attempt: int) -> str:
    """The store key of an attempt's Create."""
    return kv_key(plugin, execution_id, attempt)


def finalize_key(plugin: str, execution_id: str, attempt: int) -> str:
    """The store key of an attempt's Finalize: one token more than the Create key, so the two never meet."""
    return kv_key(plugin, execution_id, attempt, "finalize")


class IdempotencyStore(Protocol):
    """Where the results of finished runs are remembered."""

    async def get(self, key: str) -> Optional[bytes]:
        """The stored result, or None if this key never completed."""

    async def put_if_absent(self, key: str, result: bytes) -> bytes:
        """Stores ``result`` unless the key exists; returns what is stored afterwards (another's if it won)."""


class KvIdempotencyStore:
    """An IdempotencyStore over a KV bucket that may not be reachable yet; ``open`` raises while it is not."""

    def __init__(self, open_bucket: Callable[[], Awaitable[KeyValue]]) -> None:
        self._open = open_bucket

    async def get(self, key: str) -> Optional[bytes]:
        bucket = await self._open()
        try:
            entry = await bucket.get(key)
        except (KeyNotFoundError, KeyDeletedError):
            return None
        if entry.operation not in (None, "PUT"):
            return None
        return entry.value if entry.value is not None else b""

    async def put_if_absent(self, key: str, result: bytes) -> bytes:
        bucket = await self._open()
        try:
            await bucket.create(key, result)
            return result
        except KeyWrongLastSequenceError:
            # The key exists: another instance finished the same run first.
            existing = await self.get(key)
            if existing is not None:
                return existing
            raise


class MemoryIdempotencyStore:
    """An IdempotencyStore for a sidecar run without NATS (local development): idempotent within the process only."""

    def __init__(self) -> None:
        self._entries: Dict[str, bytes] = {}

    async def get(self, key: str) -> Optional[bytes]:
        return self._entries.get(key)

    async def put_if_absent(self, key: str, result: bytes) -> bytes:
        return self._entries.setdefault(key, result)


#: How many finished runs the process remembers itself, for when the store could not be written.
RECENT_LIMIT = 10_000


class _Shared:
    def __init__(self) -> None:
        self.task: Optional[asyncio.Task[bytes]] = None
        self.cancelled = asyncio.Event()
        self.waiters = 0


class IdempotentCalls:
    """Runs one kind of call (``name``: "Create" or "Finalize") at most once per key and answers repeats from
    memory or the store."""

    def __init__(self, store: IdempotencyStore, log: KitLogger, name: str) -> None:
        self._store = store
        self._log = log
        self._name = name
        self._in_flight: Dict[str, _Shared] = {}
        # A bounded memory of finished runs: covers a retry that comes back to this process while the store was
        # unreachable when the first run finished.
        self._recent: "OrderedDict[str, bytes]" = OrderedDict()

    async def run(
        self,
        key: str,
        cancelled: asyncio.Event,
        call: Callable[[asyncio.Event], Awaitable[bytes]],
    ) -> bytes:
        """The result stored under ``key``, or runs ``call`` once and stores its result. ``call`` gets an event
        that is set only when every caller waiting for it has gone away."""
        remembered = self._recent.get(key)
        if remembered is not None:
            self._log.info(f"{self._name} already done; answering with the result remembered by this process", key=key)
            return remembered
        shared = self._in_flight.get(key)
        if shared is not None:
            self._log.info(f"joining a {self._name} already in progress", key=key)
        else:
            shared = _Shared()
            shared.task = asyncio.ensure_future(self._start(key, shared, call))
            # Retrieved here so a failure nobody waits for any more is not reported as "never retrieved".
            shared.task.add_done_callback(lambda task: task.cancelled() or task.exception())
            self._in_flight[key] = shared
        return await self._wait(shared, cancelled)

    async def _start(self, key: str, shared: _Shared, call: Callable[[asyncio.Event], Awaitable[bytes]]) -> bytes:
        try:
            try:
                stored = await self._store.get(key)
            except Exception as error:  # noqa: BLE001
                # Without the store we cannot know whether this call already ran: refuse, the host retries.
                raise PluginError(
                    grpc.StatusCode.UNAVAILABLE,
                    f"{self._name.lower()} idempotency store unavailable: {str(error) or type(error).__name__}",
                ) from None
            if stored is not None:
                self._log.info(f"{self._name} already done; answering with the stored result", key=key)
                self._remember(key, stored)
                return stored
            result = await call(shared.cancelled)
            try:
                winner = await self._store.put_if_absent(key, result)
                if winner != result:
                    self._log.warning(
                        f"another instance finished the same {self._name} first; answering with its result", key=key
                    )
            except Exception as error:  # noqa: BLE001
                # The work is done: answering with its result is better than failing, which would make the host
                # retry and do it again. The process remembers it for retries that come back here.
                self._log.error(f"could not store the result of a finished {self._name}", key=key, error=str(error))
                winner = result
            self._remember(key, winner)
            return winner
        finally:
            self._in_flight.pop(key, None)

    async def _wait(self, shared: _Shared, cancelled: asyncio.Event) -> bytes:
        assert shared.task is not None
        shared.waiters += 1
        gave_up = asyncio.ensure_future(cancelled.wait())
        try:
            done, _ = await asyncio.wait({shared.task, gave_up}, return_when=asyncio.FIRST_COMPLETED)
            if shared.task in done:
                return shared.task.result()
            raise PluginError(grpc.StatusCode.CANCELLED, "cancelled")
        finally:
            gave_up.cancel()
            shared.waiters -= 1
            # Nobody wants the result any more: tell the plugin's method to stop.
            if shared.waiters == 0 and cancelled.is_set() and not shared.task.done():
                shared.cancelled.set()

    def _remember(self, key: str, result: bytes) -> None:
        self._recent.pop(key, None)
        self._recent[key] = result
        while len(self._recent) > RECENT_LIMIT:
            self._recent.popitem(last=False)
