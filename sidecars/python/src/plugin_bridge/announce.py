"""Announces a live sidecar instance in the ``pb_plugins`` KV bucket: once bound and SERVING, then at every
heartbeat. The bucket's TTL removes the key of an instance that died without a word; a draining instance says
so, then deletes its key. Every host watches the bucket: that watch is its routing table.

A sidecar given a token signs every write (the first, each heartbeat, the draining one): the instance goes in
``signed_instance`` as the bytes it was serialized to here, with ``key_id`` and ``signature`` (:mod:`.signing`).
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Optional

from google.protobuf import timestamp_pb2
from nats.js.kv import KeyValue

from pluginbridge.v1 import coordination_pb2, plugin_pb2

from .log import KitLogger
from .signing import SidecarToken

#: Seconds after heartbeat_at when a host treats the announcement as stale.
ANNOUNCEMENT_TTL_SECONDS = 10
HEARTBEAT_INTERVAL_SECONDS = 3.0


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


class Announcer:
    """Writes the instance's PluginAnnouncement now and every heartbeat until :meth:`withdraw`."""

    def __init__(
        self,
        *,
        key: str,
        instance_id: str,
        endpoint: str,
        descriptor: plugin_pb2.PluginDescriptor,
        started_at: timestamp_pb2.Timestamp,
        bucket: Callable[[], Awaitable[KeyValue]],
        log: KitLogger,
        interval: float = HEARTBEAT_INTERVAL_SECONDS,
        token: Optional[SidecarToken] = None,
    ) -> None:
        self.key = key
        self._instance_id = instance_id
        self._endpoint = endpoint
        self._descriptor = descriptor
        self._started_at = started_at
        self._bucket = bucket
        self._log = log
        self._interval = interval
        self._token = token
        self._draining = False
        self._stopped = False
        self._task: Optional[asyncio.Task[None]] = None
        # Never two writes at once: the later one (draining, delete) must win.
        self._lock = asyncio.Lock()
        self.announced = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    async def _loop(self) -> None:
        while not self._stopped:
            await self._put()
            try:
                await asyncio.sleep(self._interval)
            except asyncio.CancelledError:
                return

    def _value(self) -> bytes:
        instance = plugin_pb2.PluginInstance(
            instance_id=self._instance_id,
            endpoint=self._endpoint,
            descriptor=self._descriptor,
            started_at=self._started_at,
            heartbeat_at=_now(),
            draining=self._draining,
        )
        if self._token is None:
            announcement = coordination_pb2.PluginAnnouncement(instance=instance, ttl_seconds=ANNOUNCEMENT_TTL_SECONDS)
        else:
            # Serialized once, and exactly these bytes signed and stored: protobuf encodings are not canonical, so
            # the host checks the signature over the bytes it reads rather than over a message it re-encodes.
            signed_instance = instance.SerializeToString()
            announcement = coordination_pb2.PluginAnnouncement(
                ttl_seconds=ANNOUNCEMENT_TTL_SECONDS,
                signed_instance=signed_instance,
                key_id=self._token.key_id,
                signature=self._token.sign_announcement(ANNOUNCEMENT_TTL_SECONDS, signed_instance),
            )
        return announcement.SerializeToString()

    async def _put(self) -> bool:
        async with self._lock:
            if self._stopped:
                return False
            try:
                await (await self._bucket()).put(self.key, self._value())
            except Exception as error:  # noqa: BLE001 - the next heartbeat tries again
                self._log.warning("announcement failed; retrying at the next heartbeat", key=self.key, error=str(error) or type(error).__name__)
                return False
            if not self.announced.is_set():
                self._log.info("announced", key=self.key, endpoint=self._endpoint)
                self.announced.set()
            return True

    async def set_draining(self) -> None:
        """Announces draining=true at once, so hosts stop routing new work here."""
        self._draining = True
        await self._put()

    async def withdraw(self) -> None:
        """Stops the heartbeat and deletes the key."""
        async with self._lock:
            self._stopped = True
            if self._task:
                self._task.cancel()
            try:
                await (await self._bucket()).delete(self.key)
                self._log.info("announcement withdrawn", key=self.key)
            except Exception as error:  # noqa: BLE001
                # The bucket's TTL removes the key anyway; hosts also see draining=true until then.
                self._log.warning("could not delete the announcement; it expires with the bucket's TTL", error=str(error))

    def stop(self) -> None:
        """Stops the heartbeat without touching the key."""
        self._stopped = True
        if self._task:
            self._task.cancel()
