"""The SDK's side of authentication, against a fake host of the test's own (a real grpcio server on a loopback
port): the bearer token on every call, and TLS with a CA, certificates and keys made here with the openssl CLI."""

from __future__ import annotations

import shutil
from typing import Any, Iterator, List, Tuple

import grpc
import pytest

from pluginbridge.v1 import task_service_pb2

from helpers import Pki, RecordingTaskService, make_pki, recording_host
from plugin_bridge.sdk import BridgeClient, BridgeError, grpc_target

Metadata = List[Tuple[str, str]]


def authorization(metadata: Metadata) -> List[str]:
    return [value for key, value in metadata if key == "authorization"]


@pytest.fixture(autouse=True)
def no_tokens_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test says which token variables exist."""
    monkeypatch.delenv("PLUGIN_BRIDGE_API_TOKEN", raising=False)
    monkeypatch.delenv("PLUGIN_BRIDGE_TOKEN", raising=False)


def calls_with(**client_options: Any) -> List[Metadata]:
    """The metadata of a GetTask, a WatchTask and a raw GetTask made by a client with those options."""
    with recording_host() as (base_url, service):
        with BridgeClient(base_url, **client_options) as client:
            client.get("exec-1", timeout=5)
            list(client.watch("exec-1", timeout=5))
            client.raw["GetTask"](task_service_pb2.GetTaskRequest(id="exec-1"), timeout=5)
        return [metadata for _, metadata in service.calls]


def test_the_token_goes_on_every_call_as_a_bearer() -> None:
    calls = calls_with(token="s3cret-api-token", metadata=[("authorization", "Basic old"), ("x-team", "data")])
    assert len(calls) == 3
    for metadata in calls:
        assert authorization(metadata) == ["Bearer s3cret-api-token"]
    assert [value for key, value in calls[0] if key == "x-team"] == ["data"]


def test_no_token_no_header_and_the_sidecars_token_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUGIN_BRIDGE_TOKEN", "a-sidecars-token")
    for metadata in calls_with():
        assert authorization(metadata) == []


def test_the_api_token_variable_serves_when_the_option_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUGIN_BRIDGE_API_TOKEN", "from-the-environment")
    assert [authorization(m) for m in calls_with()] == [["Bearer from-the-environment"]] * 3
    assert [authorization(m) for m in calls_with(token="from-the-option")] == [["Bearer from-the-option"]] * 3
    # An empty option is a choice: no token, whatever the environment holds.
    assert [authorization(m) for m in calls_with(token="")] == [[]] * 3


def test_a_token_that_cannot_be_a_header_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError) as raised:
        BridgeClient("http://127.0.0.1:1", token="line\n")
    assert "line" not in str(raised.value)


def test_base_urls() -> None:
    assert grpc_target("https://127.0.0.1:8443") == "127.0.0.1:8443"
    assert grpc_target("https://bridge.example") == "bridge.example:443"
    with pytest.raises(ValueError, match="need an https:// base URL"):
        BridgeClient("http://127.0.0.1:1", ca_file=b"pem")
    with pytest.raises(ValueError, match="give both cert_file and key_file"):
        BridgeClient("https://127.0.0.1:1", cert_file=b"pem")
    with pytest.raises(ValueError, match="cannot read the CA bundle"):
        BridgeClient("https://127.0.0.1:1", ca_file="/no/such/ca.pem")


# TLS


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is missing")
    return make_pki(tmp_path_factory.mktemp("pki"))


def server_credentials(pki: Pki, require_client_cert: bool) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [(pki.server_key.read_bytes(), pki.server_cert.read_bytes())],
        root_certificates=pki.ca.read_bytes() if require_client_cert else None,
        require_client_auth=require_client_cert,
    )


@pytest.fixture()
def tls_host(pki: Pki) -> Iterator[Tuple[str, RecordingTaskService]]:
    with recording_host(server_credentials(pki, require_client_cert=False)) as served:
        yield served


def test_https_with_the_ca_option(tls_host: Tuple[str, RecordingTaskService], pki: Pki) -> None:
    base_url, service = tls_host
    assert base_url.startswith("https://127.0.0.1:")
    with BridgeClient(base_url, ca_file=pki.ca, token="over-tls") as client:
        assert client.get("exec-tls", timeout=5).id == "exec-tls"
    # The CA as PEM bytes works the same.
    with BridgeClient(base_url, ca_file=pki.ca.read_bytes()) as client:
        assert client.get("exec-tls-2", timeout=5).id == "exec-tls-2"
    calls = service.calls
    assert authorization(calls[0][1]) == ["Bearer over-tls"]
    assert authorization(calls[1][1]) == []


def test_https_without_the_ca_fails_on_the_certificate(tls_host: Tuple[str, RecordingTaskService], monkeypatch: pytest.MonkeyPatch) -> None:
    base_url, service = tls_host
    # grpcio's default roots, not a bundle the machine may point it at.
    monkeypatch.delenv("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", raising=False)
    with BridgeClient(base_url) as client, pytest.raises(BridgeError) as raised:
        client.get("exec-untrusted", timeout=5)
    assert raised.value.code == grpc.StatusCode.UNAVAILABLE
    assert "CERTIFICATE_VERIFY_FAILED" in raised.value.message, raised.value.message
    assert service.calls == []


def test_plain_http_to_a_tls_host_does_not_get_through(tls_host: Tuple[str, RecordingTaskService]) -> None:
    base_url, service = tls_host
    with BridgeClient(base_url.replace("https://", "http://")) as client, pytest.raises(BridgeError):
        client.get("exec-plain", timeout=5)
    assert service.calls == []


def test_mutual_tls_presents_the_client_certificate(pki: Pki) -> None:
    with recording_host(server_credentials(pki, require_client_cert=True)) as (base_url, service):
        with BridgeClient(base_url, ca_file=pki.ca, cert_file=pki.client_cert, key_file=pki.client_key) as client:
            assert client.get("exec-mtls", timeout=5).id == "exec-mtls"
        assert service.client_names == [[b"pb-test-client"]]
        # Without a client certificate, or with one the server's CA did not issue, no call gets in.
        for certificate in ({}, {"cert_file": pki.stranger_cert, "key_file": pki.stranger_key}):
            with BridgeClient(base_url, ca_file=pki.ca, **certificate) as client, pytest.raises(BridgeError) as raised:
                client.get("exec-refused", timeout=5)
            assert raised.value.code == grpc.StatusCode.UNAVAILABLE, raised.value.message
        assert len(service.calls) == 1
