# Runs flytekit's own connector server (`pyflyte serve connector`) in-process, on loopback only, for the Flyte
# interop tests (issue 8). Usage, with the venv scripts/setup.sh makes:
#
#   .tools/flyte-venv/bin/python test/flyte/serve_connector.py --port 18000 --modules bridge_connectors [--timeout S]
#
# The arguments are `pyflyte serve connector`'s own, passed through to flytekit's click entry point
# (flytekit.clis.sdk_in_container.pyflyte.main). Additions: this directory is put on sys.path (so --modules finds
# bridge_connectors from any cwd); --prometheus_port defaults to 0 (= no metrics server) instead of flytekit's 9090;
# --port 0 is allowed. Once the server has started, one line goes to stdout:
#
#   serve_connector: listening on 127.0.0.1:<port>
#
# SIGTERM or SIGINT stops the server (1 s grace) and the process exits 0 (only a SIGTERM within the interpreter's
# first ~50 ms, before this file runs, still kills it outright: status 143). gRPC core binds 127.0.0.1 on a dual-stack
# socket, so `ss -ltn` shows the gRPC port as [::ffff:127.0.0.1]:<port> (IPv4 loopback only; ::1 and the machine's
# addresses refuse connections); the metrics server, when enabled, shows as 127.0.0.1:<port>.
#
# Why the patches: flytekit hard-codes `server.add_insecure_port(f"[::]:{port}")` (all interfaces, no host option)
# and `prometheus_client.start_http_server(port)` (0.0.0.0). The narrowest hook for the first is the public factory
# it calls, `grpc.aio.server`: flytekit looks it up at call time, so wrapping it lets us shadow add_insecure_port on
# that one server instance only (no class-wide monkey-patch of grpc internals), and only the exact "[::]:<port>"
# form is rewritten to "127.0.0.1:<port>"; any other address passes through untouched. The same instance hook wraps
# start() to print the bound port and install the signal handlers. flytekit imports start_http_server from the
# prometheus_client package inside the function, so replacing that package attribute is enough for the second.
import asyncio
import os
import signal
import sys
from typing import Any, Callable

import grpc.aio
import prometheus_client

LOOPBACK = "127.0.0.1"
ANY_V6 = "[::]:"

# Until the server runs, SIGTERM means "never mind": exit quietly rather than die mid-import with the default action.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


def _loopback_server_factory(make_server: Callable[..., grpc.aio.Server]) -> Callable[..., grpc.aio.Server]:
    def make_loopback_server(*args: Any, **kwargs: Any) -> grpc.aio.Server:
        server = make_server(*args, **kwargs)
        add_insecure_port = server.add_insecure_port
        start = server.start
        bound: list[int] = []
        stopping: list[asyncio.Future] = []  # keeps the stop task referenced until it is done

        def add_loopback_port(address: str) -> int:
            if address.startswith(ANY_V6):
                address = f"{LOOPBACK}:{address[len(ANY_V6):]}"
            port = add_insecure_port(address)
            bound.append(port)
            return port

        async def start_and_announce() -> None:
            await start()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, lambda: stopping.append(asyncio.ensure_future(server.stop(grace=1))))
            for port in bound:
                print(f"serve_connector: listening on {LOOPBACK}:{port}", flush=True)

        server.add_insecure_port = add_loopback_port  # type: ignore[method-assign]
        server.start = start_and_announce  # type: ignore[method-assign]
        return server

    return make_loopback_server


def _loopback_metrics(start_http_server: Callable[..., Any]) -> Callable[..., Any]:
    def start_loopback_http_server(port: int, addr: str = LOOPBACK, *args: Any, **kwargs: Any) -> Any:
        if port == 0:
            print("serve_connector: prometheus metrics disabled (--prometheus_port 0)", flush=True)
            return None
        return start_http_server(port, LOOPBACK, *args, **kwargs)

    return start_loopback_http_server


def main(argv: list[str]) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    grpc.aio.server = _loopback_server_factory(grpc.aio.server)  # type: ignore[assignment]
    prometheus_client.start_http_server = _loopback_metrics(prometheus_client.start_http_server)  # type: ignore
    if not any(a == "--prometheus_port" or a.startswith("--prometheus_port=") for a in argv):
        argv = [*argv, "--prometheus_port", "0"]

    from flytekit.clis.sdk_in_container.pyflyte import main as pyflyte

    pyflyte(args=["serve", "connector", *argv], prog_name="pyflyte")  # click: exits the process when done


if __name__ == "__main__":
    main(sys.argv[1:])
