"""The sidecar's NATS connection and the KV buckets it uses.

A sidecar may start before NATS: the connection is retried until it succeeds, saying why an attempt failed (NATS
not up yet, or a certificate or credentials it refuses), and then reconnects forever; the buckets open once it is
up. nats-py does not reconnect after a protocol error from the server (such as "maximum control line exceeded"):
it closes the connection for good, and the sidecar would live on unannounced; the link then connects anew.
Credentials and TLS come from :mod:`.nats_security`. The bucket settings are part of the contract with the host
(and the other kits): whoever comes first creates a bucket, and everyone else opens it as it is, so all sides
must keep the same settings (see ``sidecars/typescript/src/nats.ts`` and ``docs/architecture.md`` section 3).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from typing import Dict, Mapping, Optional

import nats
from nats.aio.client import Client as NatsClient
from nats.js import api
from nats.js.errors import BucketNotFoundError
from nats.js.kv import KeyValue

from .log import KitLogger
from .nats_security import NatsSecurity

#: One key per live sidecar instance, refreshed by its heartbeat.
PLUGINS_BUCKET = "pb_plugins"
#: Exactly what the host and the TS kit create it with: history 1, TTL 15 s, file storage, and server-placed
#: delete markers (kept 5 s) so watchers see an expired key go. nats-py sends ``limit_marker_ttl`` as the
#: stream's ``subject_delete_marker_ttl`` and sets ``allow_msg_ttl``, as the JS client does for ``markerTTL``.
PLUGINS_BUCKET_CONFIG = api.KeyValueConfig(
    bucket=PLUGINS_BUCKET,
    history=1,
    ttl=15.0,
    storage=api.StorageType.FILE,
    limit_marker_ttl=5.0,
)

#: The resource meta of every Create and a marker for every finished Finalize, by plugin, execution and attempt
#: (see :mod:`.idempotency`).
CREATES_BUCKET = "pb_creates"
CREATES_BUCKET_CONFIG = api.KeyValueConfig(
    bucket=CREATES_BUCKET,
    history=1,
    ttl=24 * 60 * 60.0,
    storage=api.StorageType.FILE,
)

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
#: A NATS that stays unreachable is a warning at the first failed connect, then at one in this many (the rest
#: are debug lines).
FAILURES_BETWEEN_WARNINGS = 30
#: Seconds between connect attempts, and before connecting anew after NATS closed the connection for good (so a
#: server that keeps closing it, credentials revoked, is not dialled in a tight loop).
RETRY_SECONDS = 1.0


def _nats_replicas() -> int:
    """PLUGIN_BRIDGE_NATS_REPLICAS: 1, 3 or 5 copies of a bucket the kit creates; anything else is 1."""
    value = os.environ.get("PLUGIN_BRIDGE_NATS_REPLICAS", "")
    return int(value) if value in ("1", "3", "5") else 1


class NatsUnavailable(Exception):
    """NATS is not connected (yet, or any more)."""


class NatsLink:
    """A NATS connection that may not exist yet. :meth:`bucket` fails fast while NATS is unreachable, so
    callers can answer UNAVAILABLE instead of hanging until a deadline."""

    def __init__(self, servers: str, name: str, log: KitLogger, security: NatsSecurity = NatsSecurity()) -> None:
        self.servers = [s.strip() for s in servers.split(",") if s.strip()]
        self._name = name
        self._log = log
        self._security = security
        self._failed_connects = 0
        self._client: Optional[NatsClient] = None
        self._buckets: Dict[str, KeyValue] = {}
        self._bucket_locks: Dict[str, asyncio.Lock] = {}
        self._closed = False
        self._connected = asyncio.Event()
        self._task: Optional[asyncio.Task[None]] = None

    def start(self) -> None:
        """Starts connecting in the background."""
        self._task = asyncio.ensure_future(self._connect_loop())

    async def _connect_loop(self) -> None:
        while not self._closed:
            client = NatsClient()

            async def on_closed(closed: NatsClient = client) -> None:
                self._closed_for_good(closed)

            try:
                await client.connect(
                    servers=self.servers,
                    name=self._name,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=RETRY_SECONDS,
                    connect_timeout=2,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                    closed_cb=on_closed,
                    **self._security.connect_options(),
                )
            except Exception as error:  # noqa: BLE001 - retried until the server appears
                self._connect_failed(error)
                try:
                    await client.close()
                except Exception:  # noqa: BLE001
                    pass
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if self._closed:
                await client.close()
                return
            self._client = client
            self._log.info("connected to NATS", server=str(client.connected_url.geturl() if client.connected_url else ""))
            self._connected.set()
            return

    def _closed_for_good(self, client: NatsClient) -> None:
        """``client``'s closed callback: unless the link is closing, or ``client`` is not the one in use (a failed
        connect closes its client too), NATS ended the connection without a reconnect to come. The buckets were
        opened on it, so they go with it."""
        if self._closed or client is not self._client:
            return
        self._log.warning(
            "NATS closed the connection for good; connecting again",
            error=str(client.last_error or ""),
            after=RETRY_SECONDS,
        )
        self._client = None
        self._buckets.clear()
        self._task = asyncio.ensure_future(self._connect_again())

    async def _connect_again(self) -> None:
        await asyncio.sleep(RETRY_SECONDS)
        await self._connect_loop()

    def _connect_failed(self, error: BaseException) -> None:
        self._failed_connects += 1
        level = self._log.warning if self._failed_connects % FAILURES_BETWEEN_WARNINGS == 1 else self._log.debug
        level("NATS not reachable; retrying", servers=",".join(self.servers), error=str(error) or type(error).__name__)

    async def _on_error(self, error: Exception) -> None:
        # Until the first connect, nats-py retries inside connect() and reports each failed attempt only here.
        if not self._connected.is_set():
            self._connect_failed(error)
            return
        self._log.debug("NATS error", error=str(error) or type(error).__name__)

    async def _on_disconnected(self) -> None:
        if not self._closed:
            self._log.warning("NATS disconnect")

    async def _on_reconnected(self) -> None:
        self._log.info("NATS reconnect")

    async def connected(self) -> None:
        """Returns once connected."""
        await self._connected.wait()

    @property
    def is_connected(self) -> bool:
        return self._client is not None and self._client.is_connected

    async def bucket(self, config: api.KeyValueConfig) -> KeyValue:
        """Opens (creating if missing) a KV bucket; raises NatsUnavailable at once while NATS is not connected."""
        client = self._client
        if client is None or not client.is_connected:
            raise NatsUnavailable("NATS is not connected")
        name = config.bucket
        if name in self._buckets:
            return self._buckets[name]
        lock = self._bucket_locks.setdefault(name, asyncio.Lock())
        async with lock:
            if name in self._buckets:
                return self._buckets[name]
            js = client.jetstream(timeout=5)
            try:
                kv = await js.key_value(name)
            except BucketNotFoundError:
                try:
                    # As many copies as the hosts make (PLUGIN_BRIDGE_NATS_REPLICAS, 3 in a NATS cluster).
                    kv = await js.create_key_value(dataclasses.replace(config, replicas=_nats_replicas()))
                    self._log.info("created KV bucket", bucket=name)
                except Exception:  # noqa: BLE001
                    # Someone else created it between our look and our create (perhaps with other settings):
                    # open what is there.
                    kv = await js.key_value(name)
            self._buckets[name] = kv
            return kv

    async def publish(self, subject: str, data: bytes, headers: Optional[Dict[str, str]] = None) -> None:
        """Publishes a plain NATS message (no JetStream), with ``headers`` when given; raises NatsUnavailable at
        once while NATS is not connected, rather than buffering it for a reconnect that may never come."""
        client = self._client
        if client is None or not client.is_connected:
            raise NatsUnavailable("NATS is not connected")
        await client.publish(subject, data, headers=headers)

    async def close(self, timeout: float = 5.0) -> None:
        """Flushes and closes the connection; bounded so a dead server cannot hold up shutdown."""
        self._closed = True
        if self._task and not self._task.done():
            self._task.cancel()
        client = self._client
        if client is None or client.is_closed:
            return
        try:
            await asyncio.wait_for(client.drain(), timeout)
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        if not client.is_closed:
            try:
                await asyncio.wait_for(client.close(), 1.0)
            except Exception:  # noqa: BLE001
                pass


def nats_url_from_env(environ: Mapping[str, str]) -> str:
    """``PLUGIN_BRIDGE_NATS_URL``, else ``NATS_URL``, else the embedded server's default address."""
    return environ.get("PLUGIN_BRIDGE_NATS_URL") or environ.get("NATS_URL") or DEFAULT_NATS_URL



