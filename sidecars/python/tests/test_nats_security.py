"""A sidecar connects to a NATS that asks for more than a URL: TLS with a CA of its own and client certificates
(made with the openssl CLI), and operator mode with a user's ``.creds`` file (made by the Go kit's
``nats-operator`` program). Real nats-servers and the conformance plugin as a real process; without the CA, or
without credentials, the sidecar serves but never connects, and logs why. The settings are checked at start."""

from __future__ import annotations

import shutil
import ssl
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Tuple

import pytest

from helpers import (
    NATS_SERVER,
    NatsOperator,
    NatsServer,
    Pki,
    eventually,
    eventually_async,
    kv_get,
    make_nats_operator,
    make_pki,
    short_tempdir,
    start_sidecar,
)
from plugin_bridge.nats_security import NatsSecurity, resolve_nats_security

def says_why(logs: str, reason: str) -> bool:
    """Whether one warning line says the connect failed, and why."""
    return any("NATS not reachable; retrying" in line and reason in line for line in logs.splitlines())


SETTINGS = ("PLUGIN_BRIDGE_NATS_CREDENTIALS", "PLUGIN_BRIDGE_NATS_TLS_CA", "PLUGIN_BRIDGE_NATS_TLS_CERT", "PLUGIN_BRIDGE_NATS_TLS_KEY")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is missing")
    return make_pki(tmp_path_factory.mktemp("nats-pki"))


# The settings, at start.


def test_nothing_set_or_set_empty_adds_nothing() -> None:
    assert resolve_nats_security(None, None, None, None, {}) == NatsSecurity()
    assert resolve_nats_security(None, None, None, None, {name: "" for name in SETTINGS}) == NatsSecurity()
    assert NatsSecurity().connect_options() == {}


def test_the_options_win_over_the_environment(pki: Pki, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    environ = {name: missing for name in SETTINGS}
    security = resolve_nats_security("", str(pki.ca), str(pki.client_cert), str(pki.client_key), environ)
    assert security.credentials is None
    assert isinstance(security.tls, ssl.SSLContext)
    assert security.connect_options() == {"tls": security.tls}
    creds = tmp_path / "sidecar.creds"
    creds.write_text("a .creds file is read by nats-py at connect")
    from_environment = resolve_nats_security(None, None, None, None, {"PLUGIN_BRIDGE_NATS_CREDENTIALS": str(creds)})
    assert from_environment.connect_options() == {"user_credentials": str(creds)}


def test_half_a_client_certificate_is_refused_by_name(pki: Pki) -> None:
    with pytest.raises(ValueError, match="needs its key: set PLUGIN_BRIDGE_NATS_TLS_KEY"):
        resolve_nats_security(None, None, None, None, {"PLUGIN_BRIDGE_NATS_TLS_CERT": str(pki.client_cert)})
    with pytest.raises(ValueError, match="needs its certificate: set PLUGIN_BRIDGE_NATS_TLS_CERT"):
        resolve_nats_security(None, None, None, str(pki.client_key), {})


def test_a_file_that_cannot_be_read_is_refused_by_name_and_path(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "missing.creds"
    with pytest.raises(ValueError) as raised:
        resolve_nats_security(None, None, None, None, {"PLUGIN_BRIDGE_NATS_CREDENTIALS": str(missing)})
    assert str(raised.value) == f"PLUGIN_BRIDGE_NATS_CREDENTIALS: cannot read {missing}: No such file or directory"
    with pytest.raises(ValueError, match=f"PLUGIN_BRIDGE_NATS_TLS_CA: cannot read {tmp_path}: Is a directory"):
        resolve_nats_security(None, str(tmp_path), None, None, {})
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("no certificate here")
    with pytest.raises(ValueError, match=f"PLUGIN_BRIDGE_NATS_TLS_CA: {not_pem} holds no PEM certificate"):
        resolve_nats_security(None, str(not_pem), None, None, {})
    with pytest.raises(ValueError, match="PLUGIN_BRIDGE_NATS_TLS_CERT and PLUGIN_BRIDGE_NATS_TLS_KEY: .* are not a PEM"):
        resolve_nats_security(None, None, str(pki.client_cert), str(pki.server_key), {})


def test_a_sidecar_with_half_a_client_certificate_does_not_start(workdir: Path, pki: Pki) -> None:
    car = start_sidecar(
        "plugin_bridge.conformance",
        nats_url="nats://127.0.0.1:1",
        socket_dir=workdir,
        instance_id="conf-half-cert",
        env={"PLUGIN_BRIDGE_NATS_TLS_CERT": str(pki.client_cert)},
        wait_serving=False,
    )
    try:
        assert car.wait(30) != 0
    finally:
        car.stop(5)
    assert "a NATS client certificate needs its key: set PLUGIN_BRIDGE_NATS_TLS_KEY" in car.logs()


# Against real nats-servers.


@contextmanager
def secured_nats(config: str) -> Iterator[NatsServer]:
    if not NATS_SERVER.exists():
        pytest.skip(f"{NATS_SERVER} missing; run scripts/setup.sh")
    directory = short_tempdir("nats-secured")
    server = NatsServer(directory, config=config)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture()
def tls_nats(pki: Pki) -> Iterator[NatsServer]:
    """A nats-server that speaks only TLS and requires a client certificate the test's CA issued."""
    config = (
        f"tls {{\n  cert_file: {str(pki.server_cert)!r}\n  key_file: {str(pki.server_key)!r}\n"
        f"  ca_file: {str(pki.ca)!r}\n  verify: true\n}}\n"
    )
    with secured_nats(config) as server:
        yield server


@pytest.fixture()
def operator_nats(workdir: Path) -> Iterator[Tuple[NatsServer, NatsOperator]]:
    """A nats-server in operator mode (JWTs, a memory resolver, a system account), and its user's .creds file."""
    if shutil.which("go") is None:
        pytest.skip("the go command is missing: the operator's JWTs come from the Go kit")
    operator = make_nats_operator(workdir)
    with secured_nats(operator.server_config) as server:
        yield server, operator


async def test_a_sidecar_announces_itself_over_tls_and_not_without_the_ca(
    tls_nats: NatsServer, pki: Pki, workdir: Path
) -> None:
    client_tls = ssl.create_default_context(cafile=str(pki.ca))
    client_tls.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    certificate = {"PLUGIN_BRIDGE_NATS_TLS_CERT": str(pki.client_cert), "PLUGIN_BRIDGE_NATS_TLS_KEY": str(pki.client_key)}
    untrusting = start_sidecar(
        "plugin_bridge.conformance", nats_url=tls_nats.url, socket_dir=workdir, instance_id="conf-no-ca", env=certificate
    )
    trusting = None
    try:
        eventually(
            lambda: says_why(untrusting.logs(), "certificate verify failed"),
            30,
            what="the sidecar without the CA to say why it cannot connect",
        )
        trusting = start_sidecar(
            "plugin_bridge.conformance",
            nats_url=tls_nats.url,
            socket_dir=workdir,
            instance_id="conf-tls",
            env={**certificate, "PLUGIN_BRIDGE_NATS_TLS_CA": str(pki.ca)},
        )
        await eventually_async(
            lambda: kv_get(tls_nats.url, "pb_plugins", "conformance-python.conf-tls", tls=client_tls),
            30,
            what="the announcement over TLS",
        )
        assert await kv_get(tls_nats.url, "pb_plugins", "conformance-python.conf-no-ca", tls=client_tls) is None
    finally:
        untrusting.stop(10)
        if trusting is not None:
            assert trusting.stop() == 0


async def test_a_sidecar_announces_itself_with_credentials_and_not_without(
    operator_nats: Tuple[NatsServer, NatsOperator], workdir: Path
) -> None:
    server, operator = operator_nats
    creds = str(operator.credentials)
    anonymous = start_sidecar("plugin_bridge.conformance", nats_url=server.url, socket_dir=workdir, instance_id="conf-anonymous")
    trusted = None
    try:
        eventually(
            lambda: says_why(anonymous.logs(), "Authorization Violation"),
            30,
            what="the sidecar without credentials to say why it cannot connect",
        )
        trusted = start_sidecar(
            "plugin_bridge.conformance",
            nats_url=server.url,
            socket_dir=workdir,
            instance_id="conf-creds",
            env={"PLUGIN_BRIDGE_NATS_CREDENTIALS": creds, "PLUGIN_BRIDGE_LOG_LEVEL": "debug"},
        )
        await eventually_async(
            lambda: kv_get(server.url, "pb_plugins", "conformance-python.conf-creds", user_credentials=creds),
            30,
            what="the announcement with credentials",
        )
        assert await kv_get(server.url, "pb_plugins", "conformance-python.conf-anonymous", user_credentials=creds) is None
    finally:
        anonymous.stop(10)
        if trusted is not None:
            assert trusted.stop() == 0
    logs = trusted.logs()
    for line in operator.credentials.read_text().splitlines():
        if len(line) > 20:
            assert line not in logs
