"""Runs a declared plugin as a sidecar.

Binds the gRPC server (grpcio's asyncio server), turns health SERVING, then announces itself on NATS and keeps
heartbeating. On SIGTERM/SIGINT it drains: refuses new plugin calls with UNAVAILABLE "draining", turns
NOT_SERVING, announces draining, lets calls in flight finish (bounded), withdraws its announcement, shuts down and
returns, so the process exits 0. A second signal stops at once (exit 1).

With the OTEL_* environment set, it exports a span of every plugin call and flushes them as it stops
(:mod:`.tracing`).

While it runs, :meth:`Sidecar.push` (and ``ctx.push`` in a plugin method) publishes a status between polls.

Given a token (``PLUGIN_BRIDGE_TOKEN`` and ``PLUGIN_BRIDGE_TOKEN_ID``, or the options), it signs every
announcement and every push (:mod:`.signing`). Given NATS credentials or TLS files, it connects with them
(:mod:`.nats_security`).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import sys
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

import grpc
from google.protobuf import timestamp_pb2

from pluginbridge.v1 import coordination_pb2

from .announce import HEARTBEAT_INTERVAL_SECONDS, Announcer
from .descriptor import plugin_descriptor
from .endpoint import bind_address, default_endpoint, dial_address, parse_endpoint, remove_stale_socket
from .errors import PluginError, quote_input
from .execution_id import EXECUTION_ID_RULE, is_execution_id
from .health import HEALTH_SERVICE, SERVING, HealthState
from .idempotency import IdempotencyStore, IdempotentCalls, KvIdempotencyStore, MemoryIdempotencyStore
from .keys import kv_key
from .log import get_logger
from .nats_link import CREATES_BUCKET_CONFIG, PLUGINS_BUCKET_CONFIG, NatsLink, nats_url_from_env
from .nats_security import NatsSecurity, resolve_nats_security
from .phases import PhaseResult
from .plugin import AsyncPlugin, CorePlugin, Plugin
from .plugin_services import (
    ASYNC_SERVICE,
    CORE_SERVICE,
    METADATA_SERVICE,
    SYNC_SERVICE,
    async_handler,
    core_handler,
    metadata_handler,
    phase_response,
    sync_handler,
)
from .signing import SidecarToken, resolve_token
from .tracing import install_tracing

DEFAULT_DRAIN_TIMEOUT_SECONDS = 30.0
#: The host's limits on the sidecar hop (src/registry/plugin-client.ts): large outputs must fit both ways.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

_INSTANCE_ID = re.compile(r"^[A-Za-z0-9_-]+$")
#: Where a push goes; one host of the queue group takes it.
PUSH_SUBJECT_PREFIX = "pb.push."


@dataclass
class ServeOptions:
    """Settings of :func:`serve`; each defaults to its environment variable, then to the built-in default."""

    #: NATS server URL(s), comma-separated; ``False`` runs without NATS (no announcement, Create and Finalize
    #: once per attempt within the process only; for local development). Default: $PLUGIN_BRIDGE_NATS_URL, $NATS_URL,
    #: nats://127.0.0.1:4222.
    nats_url: Union[str, bool, None] = None
    #: ``unix:/path`` or ``host:port``. Default: $PLUGIN_BRIDGE_ENDPOINT, else a unix socket in the temp dir.
    endpoint: Optional[str] = None
    #: Letters, digits, '-' and '_'. Default: $PLUGIN_BRIDGE_INSTANCE_ID, else ``<name>-<8 hex>``.
    instance_id: Optional[str] = None
    #: How long a drain waits for calls in flight, in seconds.
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT_SECONDS
    heartbeat_interval: float = HEARTBEAT_INTERVAL_SECONDS
    #: Drain on SIGTERM and SIGINT.
    handle_signals: bool = True
    #: The token a host issued this sidecar; with it, announcements and pushes are signed. Needs ``token_id``.
    #: Default: $PLUGIN_BRIDGE_TOKEN. A secret: kept out of the repr, never logged.
    token: Optional[str] = field(default=None, repr=False)
    #: The name the token was issued for. Default: $PLUGIN_BRIDGE_TOKEN_ID.
    token_id: Optional[str] = None
    #: A NATS ``.creds`` file (a user JWT and its NKey seed). Default: $PLUGIN_BRIDGE_NATS_CREDENTIALS.
    nats_credentials: Optional[str] = None
    #: PEM: the CA to trust for the NATS server, instead of the system's roots. Default: $PLUGIN_BRIDGE_NATS_TLS_CA.
    nats_tls_ca: Optional[str] = None
    #: PEM: a client certificate for a NATS that asks for one, with ``nats_tls_key``. Default:
    #: $PLUGIN_BRIDGE_NATS_TLS_CERT.
    nats_tls_cert: Optional[str] = None
    #: PEM: the client certificate's key. Default: $PLUGIN_BRIDGE_NATS_TLS_KEY.
    nats_tls_key: Optional[str] = None


def resolve_instance_id(plugin: Plugin, explicit: Optional[str] = None) -> str:
    """The instance id :func:`serve` uses: explicit, else $PLUGIN_BRIDGE_INSTANCE_ID, else ``<name>-<8 hex>``."""
    instance_id = explicit or os.environ.get("PLUGIN_BRIDGE_INSTANCE_ID") or f"{plugin.name}-{secrets.token_hex(4)}"
    # The id is a NATS key token in the announcement key, as the host builds it: refuse anything else up front.
    if not _INSTANCE_ID.match(instance_id):
        raise ValueError(f"instance id {instance_id!r} must be letters, digits, '-' and '_'")
    return instance_id


class Sidecar:
    """A running sidecar: what :func:`start` returns."""

    def __init__(self) -> None:
        #: The endpoint as announced and as a host dials it: ``unix:/abs/path`` or ``127.0.0.1:port``.
        self.endpoint = ""
        self.instance_id = ""
        #: Set once the first announcement is stored in NATS (never, when run without NATS).
        self.announced = asyncio.Event()
        self._shutdown: Optional[Callable[[bool], "asyncio.Future[None]"]] = None
        self._stopped = asyncio.Event()
        self._nats: Optional[NatsLink] = None
        self._token: Optional[SidecarToken] = None

    async def push(self, execution_id: str, attempt: int, result: PhaseResult) -> None:
        """Tells the hosts of a phase change now, between polls (an async plugin's remote work, a core plugin's
        attempt): publishes a ``PushedStatus`` on ``pb.push.<execution_id>``, which one host applies as it would
        the next Get's or Handle's report. Polling stays the fallback, so a push that is lost only waits for the
        next resync; a host drops a push for another attempt, or for an execution that has ended. With a token, the
        message carries the ``Pb-Key-Id`` and ``Pb-Signature`` headers.

        ``result`` is checked as a Get's answer is (``PluginError`` INTERNAL for no PhaseResult,
        PHASE_UNSPECIFIED or outputs that are not a JSON object). Raises RuntimeError without NATS, ValueError for
        an execution id that is not 1 to 64 letters, digits, '-' and '_' or an attempt below 1, and
        :class:`NatsUnavailable` while NATS is not connected (or after the sidecar stopped). Must run on the
        sidecar's event loop (from another thread: ``asyncio.run_coroutine_threadsafe``).
        """
        nats = self._nats
        if nats is None:
            raise RuntimeError("push needs NATS; this sidecar runs without it")
        # The execution id is a NATS subject token, as the host builds it; anything else cannot be an execution of it.
        if not is_execution_id(execution_id):
            shown = quote_input(execution_id) if isinstance(execution_id, str) else repr(execution_id)
            raise ValueError(f"execution id {shown} is not one a host gives: {EXECUTION_ID_RULE}")
        if isinstance(attempt, bool) or not isinstance(attempt, int) or not 1 <= attempt <= 2**32 - 1:
            raise ValueError(f"attempt {attempt!r} is not one a host gives (a whole number from 1)")
        phase_info, outputs = phase_response(result, "push", "was given")
        status = coordination_pb2.PushedStatus(
            execution_id=execution_id,
            attempt=attempt,
            instance_id=self.instance_id,
            phase_info=phase_info,
            outputs=outputs,
        )
        payload = status.SerializeToString()
        # Signed over exactly the bytes published, as the announcement is.
        headers = self._token.push_headers(payload) if self._token else None
        await nats.publish(PUSH_SUBJECT_PREFIX + execution_id, payload, headers)

    async def drain(self) -> None:
        """Graceful: stops taking calls, waits for calls in flight (bounded), withdraws, shuts down."""
        assert self._shutdown
        await self._shutdown(True)

    async def stop(self) -> None:
        """Immediate: withdraws and shuts down without waiting for calls in flight."""
        assert self._shutdown
        await self._shutdown(False)

    async def wait_stopped(self) -> None:
        """Returns once the sidecar has shut down (after a signal, drain() or stop())."""
        await self._stopped.wait()


async def start(plugin: Plugin, options: Optional[ServeOptions] = None) -> Sidecar:
    """Starts serving ``plugin``; returns once the gRPC server is bound and SERVING (the announcement follows
    as soon as NATS is reachable)."""
    options = options or ServeOptions()
    log = get_logger(plugin.name)
    instance_id = resolve_instance_id(plugin, options.instance_id)
    token = resolve_token(options.token, options.token_id, os.environ)
    endpoint_text = options.endpoint or os.environ.get("PLUGIN_BRIDGE_ENDPOINT")
    endpoint = parse_endpoint(endpoint_text) if endpoint_text else default_endpoint(instance_id)
    nats_url: Union[str, bool] = (
        False if options.nats_url is False else (options.nats_url or nats_url_from_env(os.environ))  # type: ignore[assignment]
    )
    # Checked with the other settings, before anything starts; without NATS there is nothing to secure.
    nats_security = (
        resolve_nats_security(
            options.nats_credentials, options.nats_tls_ca, options.nats_tls_cert, options.nats_tls_key, os.environ
        )
        if isinstance(nats_url, str)
        else NatsSecurity()
    )
    descriptor = plugin_descriptor(plugin)
    # Before the services are built, so their spans go to the provider installed here.
    tracing = install_tracing(plugin.name, plugin.version, instance_id, log)
    started_at = timestamp_pb2.Timestamp()
    started_at.GetCurrentTime()

    plugin_service = {"async": ASYNC_SERVICE, "sync": SYNC_SERVICE, "core": CORE_SERVICE}[plugin.kind]
    health = HealthState([METADATA_SERVICE.full_name, plugin_service.full_name, HEALTH_SERVICE])
    await health.start_not_serving()

    sidecar = Sidecar()
    sidecar.instance_id = instance_id
    sidecar._token = token
    loop = asyncio.get_running_loop()

    # Every plugin call passes this gate: refused while draining, counted while in flight.
    state = {"draining": False, "in_flight": 0}
    idle = asyncio.Event()
    idle.set()

    def gate() -> Callable[[], None]:
        if state["draining"]:
            raise PluginError(grpc.StatusCode.UNAVAILABLE, "draining")
        state["in_flight"] += 1
        idle.clear()
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            state["in_flight"] -= 1
            if state["in_flight"] == 0:
                idle.set()

        return release

    nats: Optional[NatsLink] = None
    store: IdempotencyStore
    if isinstance(nats_url, str):
        nats = NatsLink(nats_url, instance_id, log, nats_security)
        sidecar._nats = nats
        link = nats
        store = KvIdempotencyStore(lambda: link.bucket(CREATES_BUCKET_CONFIG))
    else:
        log.warning("running without NATS: no announcement, Create and Finalize once per attempt in this process only")
        store = MemoryIdempotencyStore()

    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
    )
    server.add_generic_rpc_handlers((metadata_handler(descriptor, log),))
    if isinstance(plugin, AsyncPlugin):
        creates = IdempotentCalls(store, log, "Create")
        server.add_generic_rpc_handlers((async_handler(plugin, creates, log, gate, instance_id, sidecar.push),))
    elif isinstance(plugin, CorePlugin):
        finalizes = IdempotentCalls(store, log, "Finalize")
        server.add_generic_rpc_handlers((core_handler(plugin, finalizes, log, gate, instance_id, sidecar.push),))
    else:
        server.add_generic_rpc_handlers((sync_handler(plugin, log, gate, instance_id, sidecar.push),))
    health.add_to(server)

    if endpoint.kind == "unix":
        remove_stale_socket(endpoint.path)
    address = bind_address(endpoint)
    try:
        bound_port = server.add_insecure_port(address)
        await server.start()
    except Exception as error:
        raise RuntimeError(f"cannot listen on {address}: {error}") from error
    sidecar.endpoint = dial_address(endpoint, bound_port)
    await health.set_all(SERVING)
    log.info(
        f"serving on {sidecar.endpoint}",
        kind=plugin.kind,
        version=plugin.version,
        instance=instance_id,
        taskTypes=",".join(f"{t.type}@{t.version}" for t in plugin.task_types),
    )

    # Announced only now: bound and SERVING, so a host that sees the key can call at once.
    announcer: Optional[Announcer] = None
    if nats is not None:
        link = nats
        announcer = Announcer(
            key=kv_key(plugin.name, instance_id),
            instance_id=instance_id,
            endpoint=sidecar.endpoint,
            descriptor=descriptor,
            started_at=started_at,
            bucket=lambda: link.bucket(PLUGINS_BUCKET_CONFIG),
            log=log,
            interval=options.heartbeat_interval,
            token=token,
        )
        sidecar.announced = announcer.announced
        if token is not None:
            log.info("signing announcements and pushes", keyId=token.key_id)
        log.info("waiting for NATS", servers=",".join(nats.servers))
        nats.start()

        async def announce_when_connected() -> None:
            await link.connected()
            if not state["draining"] and announcer is not None:
                announcer.start()

        connect_watch = asyncio.ensure_future(announce_when_connected())
    else:
        connect_watch = None

    stopping: dict[str, "asyncio.Future[None]"] = {}

    async def shutdown_now(graceful: bool) -> None:
        state["draining"] = True
        await health.enter_shutdown()
        log.info("draining" if graceful else "stopping", inFlight=state["in_flight"])
        if connect_watch is not None:
            connect_watch.cancel()
        if announcer is not None and nats is not None and nats.is_connected:
            await _within(announcer.set_draining(), 5.0)
        if graceful and state["in_flight"] > 0:
            if not await _within(idle.wait(), options.drain_timeout):
                log.warning("drain timeout passed with calls still in flight", inFlight=state["in_flight"])
        if announcer is not None:
            if nats is not None and nats.is_connected:
                await _within(announcer.withdraw(), 5.0)
            else:
                announcer.stop()
        await server.stop(5.0 if graceful else 0)
        # Every call is answered now, so every span has ended: export them before the process exits.
        if tracing is not None:
            await tracing.shutdown()
        if nats is not None:
            await nats.close()
        if endpoint.kind == "unix":
            try:
                os.unlink(endpoint.path)
            except OSError:
                pass  # already gone, or not ours to remove; the next start handles a stale file
        log.info("stopped")
        sidecar._stopped.set()

    def shutdown(graceful: bool) -> "asyncio.Future[None]":
        if "future" not in stopping:
            stopping["future"] = asyncio.ensure_future(shutdown_now(graceful))
        return stopping["future"]

    sidecar._shutdown = shutdown

    if options.handle_signals:
        signals_seen = {"count": 0}

        def on_signal(signum: int) -> None:
            signals_seen["count"] += 1
            name = signal.Signals(signum).name
            if signals_seen["count"] > 1:
                log.warning(f"{name} again: stopping without waiting")
                os._exit(1)
            log.info(f"{name} received")
            shutdown(True)

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)

    return sidecar


async def _within(awaitable: "asyncio.Future[object] | object", seconds: float) -> bool:
    """True when ``awaitable`` finished within ``seconds``; never raises (shutdown goes on regardless)."""
    try:
        await asyncio.wait_for(awaitable, seconds)  # type: ignore[arg-type]
        return True
    except asyncio.TimeoutError:
        return False
    except Exception:  # noqa: BLE001
        return True


def serve(plugin: Plugin, options: Optional[ServeOptions] = None, **overrides: object) -> None:
    """Serves ``plugin`` until SIGTERM/SIGINT, then drains and returns (the process then exits 0).

    ``overrides`` are :class:`ServeOptions` fields: ``serve(plugin, endpoint="127.0.0.1:0")``.
    """
    resolved = options or ServeOptions()
    for key, value in overrides.items():
        if not hasattr(resolved, key):
            raise TypeError(f"serve() got an unknown option {key!r}")
        setattr(resolved, key, value)

    async def main() -> None:
        sidecar = await start(plugin, resolved)
        await sidecar.wait_stopped()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:  # only without handle_signals
        sys.exit(130)
