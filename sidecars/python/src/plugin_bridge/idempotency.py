"""Makes Create idempotent by execution id and attempt (docs/architecture.md, rule 3): a retried Create after a
crash, a timeout or a duplicate delivery returns the resource meta of the first one and starts nothing twice.

Within one process, concurrent duplicates share one task; across processes and restarts, the meta is stored in
the ``pb_creates`` KV bucket under ``<plugin>.<execution>.<attempt>`` (tokens escaped as in :mod:`.keys`), the
same key every kit uses, so a retry may land on any instance in any language.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Awaitable, Callable, Dict, Optional, Protocol

import grpc
from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from .errors import PluginError
from .log import KitLogger


class CreateStore(Protocol):
    """Where finished Creates are remembered."""

    async def get(self, key: str) -> Optional[bytes]:
        """The stored meta, or None if this key never completed."""

    async def put_if_absent(self, key: str, meta: bytes) -> bytes:
        """Stores ``meta`` unless the key exists; returns what is stored afterwards (another's meta if it won)."""


class KvCreateStore:
    """A CreateStore over a KV bucket that may not be reachable yet; ``open`` raises while it is not."""

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

    async def put_if_absent(self, key: str, meta: bytes) -> bytes:
        bucket = await self._open()
        try:
            await bucket.create(key, meta)
            return meta
        except KeyWrongLastSequenceError:
            # The key exists: another instance finished the same Create first.
            existing = await self.get(key)
            if existing is not None:
                return existing
            raise


class MemoryCreateStore:
    """A CreateStore for a sidecar run without NATS (local development): idempotent within the process only."""

    def __init__(self) -> None:
        self._entries: Dict[str, bytes] = {}

    async def get(self, key: str) -> Optional[bytes]:
        return self._entries.get(key)

    async def put_if_absent(self, key: str, meta: bytes) -> bytes:
        return self._entries.setdefault(key, meta)


#: How many finished Creates the process remembers itself, for when the store could not be written.
RECENT_LIMIT = 10_000


class _Shared:
    def __init__(self) -> None:
        self.task: Optional[asyncio.Task[bytes]] = None
        self.cancelled = asyncio.Event()
        self.waiters = 0


class IdempotentCreates:
    """Runs each Create at most once per key and answers repeats from memory or the store."""

    def __init__(self, store: CreateStore, log: KitLogger) -> None:
        self._store = store
        self._log = log
        self._in_flight: Dict[str, _Shared] = {}
        # A bounded memory of finished Creates: covers a retry that comes back to this process while the store
        # was unreachable when the first Create finished.
        self._recent: "OrderedDict[str, bytes]" = OrderedDict()

    async def run(
        self,
        key: str,
        cancelled: asyncio.Event,
        create: Callable[[asyncio.Event], Awaitable[bytes]],
    ) -> bytes:
        """The meta stored under ``key``, or runs ``create`` once and stores its result. ``create`` gets an event
        that is set only when every caller waiting for it has gone away."""
        remembered = self._recent.get(key)
        if remembered is not None:
            self._log.info("Create already done; returning the resource meta remembered by this process", key=key)
            return remembered
        shared = self._in_flight.get(key)
        if shared is not None:
            self._log.info("joining a Create already in progress", key=key)
        else:
            shared = _Shared()
            shared.task = asyncio.ensure_future(self._start(key, shared, create))
            # Retrieved here so a failure nobody waits for any more is not reported as "never retrieved".
            shared.task.add_done_callback(lambda task: task.cancelled() or task.exception())
            self._in_flight[key] = shared
        return await self._wait(shared, cancelled)

    async def _start(self, key: str, shared: _Shared, create: Callable[[asyncio.Event], Awaitable[bytes]]) -> bytes:
        try:
            try:
                stored = await self._store.get(key)
            except Exception as error:  # noqa: BLE001
                # Without the store we cannot know whether this Create already ran: refuse, the host retries.
                raise PluginError(
                    grpc.StatusCode.UNAVAILABLE,
                    f"create idempotency store unavailable: {str(error) or type(error).__name__}",
                ) from None
            if stored is not None:
                self._log.info("Create already done; returning the stored resource meta", key=key)
                self._remember(key, stored)
                return stored
            meta = await create(shared.cancelled)
            try:
                winner = await self._store.put_if_absent(key, meta)
                if winner != meta:
                    self._log.warning(
                        "another instance finished the same Create first; returning its resource meta", key=key
                    )
            except Exception as error:  # noqa: BLE001
                # The remote work has started: answering with its meta is better than failing, which would make
                # the host retry and start it again. The process remembers it for retries that come back here.
                self._log.error("could not store the resource meta of a finished Create", key=key, error=str(error))
                winner = meta
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
            # Nobody wants the result any more: tell the plugin's create to stop.
            if shared.waiters == 0 and cancelled.is_set() and not shared.task.done():
                shared.cancelled.set()

    def _remember(self, key: str, meta: bytes) -> None:
        self._recent.pop(key, None)
        self._recent[key] = meta
        while len(self._recent) > RECENT_LIMIT:
            self._recent.popitem(last=False)
