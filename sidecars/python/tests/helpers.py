"""Shared by the kit's tests: a real nats-server, a real host, real sidecar processes, grpcio clients built from
the generated descriptors, NATS KV reads. Every wait is bounded; everything binds loopback or a unix socket."""

from __future__ import annotations

import asyncio
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, TypeVar

import grpc
import nats
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2

from pluginbridge.v1 import plugin_pb2, task_pb2, task_service_pb2

from plugin_bridge.grpc_service import client_methods, message_classes
from plugin_bridge.sdk.client import TASK_SERVICE

KIT_ROOT = Path(__file__).resolve().parent.parent
PROJECT_ROOT = KIT_ROOT.parent.parent
NATS_SERVER = PROJECT_ROOT / ".tools" / "bin" / "nats-server"
OTLP_RECEIVER = PROJECT_ROOT / "test" / "helpers" / "otlp_receiver.py"
PYTHON = sys.executable

T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def eventually(check: Callable[[], T], timeout: float = 15.0, interval: float = 0.1, what: str = "condition") -> T:
    """Calls ``check`` until it returns a truthy value without raising; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Optional[BaseException] = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as error:  # noqa: BLE001
            last = error
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}" + (f": {last!r}" if last else ""))


async def eventually_async(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Optional[BaseException] = None
    while time.monotonic() < deadline:
        try:
            value = await check()
            if value:
                return value
        except Exception as error:  # noqa: BLE001
            last = error
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}" + (f": {last!r}" if last else ""))


class NatsServer:
    """A real nats-server with JetStream in a temp dir, on a free loopback port; ``config`` adds to its
    configuration file (a tls block, an operator and its accounts, ...)."""

    def __init__(self, workdir: Path, port: Optional[int] = None, config: str = "") -> None:
        self.port = port or free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        store = workdir / "jetstream"
        store.mkdir(parents=True, exist_ok=True)
        config_file = workdir / "nats.conf"
        config_file.write_text(f"max_payload: 8388608\njetstream {{ store_dir: {str(store)!r} }}\n{config}")
        self.process = subprocess.Popen(
            [str(NATS_SERVER), "-c", str(config_file), "-js", "-a", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def listening() -> bool:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True

        eventually(listening, 15, what="nats-server to listen")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@dataclass
class Pki:
    """A CA of the test's own and PEM files made with the openssl CLI: a server certificate for 127.0.0.1 and a
    client certificate issued by the CA, and a client certificate it never issued."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    #: A client certificate no CA of the server's vouches for.
    stranger_cert: Path
    stranger_key: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


def _issue(directory: Path, name: str, subject: str, ca: Path, ca_key: Path, *extensions: str) -> Tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    addext = [arg for extension in ("basicConstraints=critical,CA:FALSE", *extensions) for arg in ("-addext", extension)]
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
        "-subj", subject, *addext, "-CA", str(ca), "-CAkey", str(ca_key), "-keyout", str(key), "-out", str(cert),
    )
    return cert, key


def make_pki(directory: Path) -> Pki:
    """Writes a new :class:`Pki` into ``directory`` (the openssl CLI must be on the PATH)."""
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
        "-subj", "/CN=plugin-bridge test CA", "-keyout", str(ca_key), "-out", str(ca),
    )
    server_cert, server_key = _issue(directory, "server", "/CN=127.0.0.1", ca, ca_key, "subjectAltName=IP:127.0.0.1")
    client_cert, client_key = _issue(directory, "client", "/CN=pb-test-client", ca, ca_key, "extendedKeyUsage=clientAuth")
    stranger_cert, stranger_key = directory / "stranger.pem", directory / "stranger.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
        "-subj", "/CN=pb-stranger", "-keyout", str(stranger_key), "-out", str(stranger_cert),
    )
    return Pki(ca, server_cert, server_key, client_cert, client_key, stranger_cert, stranger_key)


@dataclass
class NatsOperator:
    """What a nats-server in operator mode needs, made by the Go kit's ``nats-operator`` program (no JWT library
    for Python is at hand): the configuration lines that trust the operator, and a user's ``.creds`` file of its
    JetStream account."""

    server_config: str
    credentials: Path


GO_KIT = KIT_ROOT.parent / "go"


def make_nats_operator(directory: Path) -> NatsOperator:
    """Runs ``go run ./internal/cmd/nats-operator`` in the Go kit (the go command must be on the PATH; a first
    build can take a while on a busy machine)."""
    subprocess.run(
        ["go", "run", "./internal/cmd/nats-operator", str(directory)],
        cwd=str(GO_KIT), check=True, capture_output=True, timeout=300,
    )
    return NatsOperator((directory / "operator.conf").read_text(), directory / "user.creds")


NODE = shutil.which("node")


class Host:
    """A real plugin-bridge host (``node bin/plugin-bridge.js serve``) on a free loopback port; waits until
    its health says SERVING."""

    def __init__(self, nats_url: str, workdir: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "host.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLUGIN_BRIDGE_")}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [NODE or "node", str(PROJECT_ROOT / "bin" / "plugin-bridge.js"), "serve",
                 "--nats-url", nats_url, "--listen-port", str(self.port), "--data-dir", str(workdir / "data"),
                 "--no-instance-retry-ms", "200"],
                cwd=str(PROJECT_ROOT), env=env, stdout=subprocess.DEVNULL, stderr=log,
            )
        channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )

        def serving() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"host exited:\n{self.log_path.read_text()}")
            return check(health_pb2.HealthCheckRequest(service=""), timeout=2).status == health_pb2.HealthCheckResponse.SERVING

        try:
            eventually(serving, 60, what="the host to serve")
        finally:
            channel.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@dataclass
class Sidecar:
    process: subprocess.Popen  # type: ignore[type-arg]
    endpoint: str
    instance_id: str
    log_path: Path
    _channel: Optional[grpc.Channel] = field(default=None, repr=False)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def channel(self) -> grpc.Channel:
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.endpoint)
        return self._channel

    def methods(self, service: str) -> Dict[str, Any]:
        return client_methods(self.channel, plugin_pb2.DESCRIPTOR.services_by_name[service])

    def health(self, service: str = "") -> int:
        check = self.channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        return check(health_pb2.HealthCheckRequest(service=service), timeout=5).status

    def signal(self, signum: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def wait(self, timeout: float = 40.0) -> int:
        return self.process.wait(timeout)

    def stop(self, grace: float = 40.0) -> Optional[int]:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait(5)
        return self.process.returncode


def start_sidecar(
    module: str,
    *,
    nats_url: str,
    socket_dir: Path,
    instance_id: str,
    env: Optional[Dict[str, Optional[str]]] = None,
    wait_serving: bool = True,
) -> Sidecar:
    """Starts ``python -m <module>`` as a sidecar on a unix socket and waits until health says SERVING.
    ``env`` adds to the test's environment; a None value removes the variable. The sidecar has no token unless
    ``env`` gives it one."""
    endpoint = f"unix:{socket_dir / (instance_id + '.sock')}"
    log_path = socket_dir / f"{instance_id}.log"
    merged = {
        **os.environ,
        "PLUGIN_BRIDGE_NATS_URL": nats_url,
        "PLUGIN_BRIDGE_ENDPOINT": endpoint,
        "PLUGIN_BRIDGE_INSTANCE_ID": instance_id,
        "PLUGIN_BRIDGE_TOKEN": None,
        "PLUGIN_BRIDGE_TOKEN_ID": None,
        **(env or {}),
    }
    full_env = {key: value for key, value in merged.items() if value is not None}
    log_file = open(log_path, "ab")
    process = subprocess.Popen(
        [PYTHON, "-m", module], env=full_env, stdout=subprocess.DEVNULL, stderr=log_file, cwd=str(socket_dir)
    )
    log_file.close()
    sidecar = Sidecar(process=process, endpoint=endpoint, instance_id=instance_id, log_path=log_path)
    if wait_serving:
        def serving() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"sidecar exited with {process.returncode}:\n{sidecar.logs()}")
            return sidecar.health("") == health_pb2.HealthCheckResponse.SERVING

        try:
            eventually(serving, 20, what=f"{instance_id} to serve")
        except AssertionError:
            sidecar.stop(5)
            raise AssertionError(f"sidecar {instance_id} did not serve:\n{sidecar.logs()}")
    return sidecar


class OtlpReceiver:
    """The project's test OTLP receiver (``test/helpers/otlp_receiver.py``) as a process on a loopback port:
    every span exported to it becomes one JSON line in ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.process = subprocess.Popen(
            [PYTHON, str(OTLP_RECEIVER), str(path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.process.stdout is not None
        # One line, "listening <port>", once it serves; bounded so a receiver that fails cannot hang the test.
        ready, _, _ = select.select([self.process.stdout], [], [], 20)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith("listening "):
            self.stop()
            raise AssertionError(f"the OTLP receiver did not start: {line!r}")
        self.endpoint = f"http://127.0.0.1:{int(line.split()[1])}"

    def spans(self) -> List[Dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def without_otel_env(**settings: str) -> Dict[str, Optional[str]]:
    """A ``start_sidecar`` env that removes every OTEL_* variable of the test's own environment, then sets
    ``settings``: each test says exactly which OpenTelemetry configuration its sidecar gets."""
    env: Dict[str, Optional[str]] = {key: None for key in os.environ if key.startswith("OTEL_")}
    env.update(settings)
    return env


def short_tempdir(prefix: str) -> Path:
    """A temp dir with a short path: unix socket paths are limited to about 100 bytes."""
    base = "/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()
    return Path(tempfile.mkdtemp(prefix=f"pb-{prefix}-", dir=base))


def task_context(
    execution_id: str,
    custom: Dict[str, Any],
    *,
    attempt: int = 1,
    task_type: str = "conformance-python",
) -> task_pb2.TaskContext:
    """A TaskContext as the host builds it."""
    struct = struct_pb2.Struct()
    struct.update(custom)
    return task_pb2.TaskContext(
        execution_id=task_pb2.TaskExecutionId(id=execution_id, attempt=attempt),
        template=task_pb2.TaskTemplate(type=task_type, type_version=1, custom=struct),
        metadata=task_pb2.TaskExecutionMetadata(namespace="default"),
    )


async def kv_get(url: str, bucket: str, key: str, **connect_options: Any) -> Optional[bytes]:
    """A KV entry's value as a host or another kit reads it, or None when missing or deleted. ``connect_options``
    go to ``nats.connect``: what a secured server asks of its clients."""
    client = await nats.connect(url, **connect_options)
    try:
        kv = await client.jetstream().key_value(bucket)
        try:
            return (await kv.get(key)).value
        except Exception:  # noqa: BLE001 - missing or deleted
            return None
    finally:
        await client.close()


def audit_lines(path: Path) -> List[List[str]]:
    if not path.exists():
        return []
    return [line.split(" ") for line in path.read_text().splitlines() if line.strip()]


def run_in_thread(fn: Callable[[], T]) -> "threading.Thread":
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    return thread


class RecordingTaskService:
    """GetTask and WatchTask (one event) of a fake host, for the SDK's unit tests: they remember the invocation
    metadata of every call, and the common name of the client certificate it came with (mutual TLS)."""

    def __init__(self) -> None:
        self.calls: List[Tuple[str, List[Tuple[str, str]]]] = []
        self.client_names: List[List[bytes]] = []

    def _record(self, method: str, context: grpc.ServicerContext) -> None:
        self.calls.append((method, [(key, value) for key, value in context.invocation_metadata()]))
        self.client_names.append(list(context.auth_context().get("x509_common_name", [])))

    def get_task(self, request: Any, context: grpc.ServicerContext) -> task_service_pb2.GetTaskResponse:
        self._record("GetTask", context)
        return task_service_pb2.GetTaskResponse(execution=task_service_pb2.TaskExecution(id=request.id))

    def watch_task(self, request: Any, context: grpc.ServicerContext) -> Iterator[task_service_pb2.WatchTaskResponse]:
        self._record("WatchTask", context)
        yield task_service_pb2.WatchTaskResponse(event=task_service_pb2.TaskEvent(execution_id=request.id))

    def handler(self) -> grpc.GenericRpcHandler:
        def method(name: str, behaviour: Callable[..., Any], streaming: bool) -> grpc.RpcMethodHandler:
            request_cls, response_cls = message_classes(TASK_SERVICE.methods_by_name[name])
            factory = grpc.unary_stream_rpc_method_handler if streaming else grpc.unary_unary_rpc_method_handler
            return factory(behaviour, request_deserializer=request_cls.FromString, response_serializer=response_cls.SerializeToString)

        return grpc.method_handlers_generic_handler(
            TASK_SERVICE.full_name,
            {"GetTask": method("GetTask", self.get_task, False), "WatchTask": method("WatchTask", self.watch_task, True)},
        )


@contextmanager
def recording_host(credentials: Optional[grpc.ServerCredentials] = None) -> Iterator[Tuple[str, RecordingTaskService]]:
    """A :class:`RecordingTaskService` on a free loopback port: h2c, or TLS with ``credentials``. Yields the
    base URL a client uses and the service."""
    service = RecordingTaskService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((service.handler(),))
    if credentials is None:
        base_url = f"http://127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    else:
        base_url = f"https://127.0.0.1:{server.add_secure_port('127.0.0.1:0', credentials)}"
    server.start()
    try:
        yield base_url, service
    finally:
        server.stop(None).wait(5)
