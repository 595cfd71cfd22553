"""gRPC's standard health service (``grpc.health.v1.Health``, from grpcio-health-checking).

The sidecar announces itself only once it is SERVING, and a draining sidecar turns NOT_SERVING so that whoever
checks (an operator, Kubernetes, a test) sees it leaving. Status is kept for "" (the server as a whole) and each
served service name; an unknown name is NOT_FOUND on Check and SERVICE_UNKNOWN on Watch, as the protocol says.
The methods are registered here rather than by grpcio-health-checking, so that a request that does not decode is
INTERNAL, as on the plugin's services (:mod:`.grpc_service`), not grpc.aio's UNKNOWN.
"""

from __future__ import annotations

from typing import Any, Iterable

import grpc
from grpc_health.v1 import health, health_pb2

from .grpc_service import refuse_undecodable, request_decoder

HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthState:
    """The served names' statuses over grpcio-health-checking's asyncio servicer."""

    def __init__(self, service_names: Iterable[str]) -> None:
        self.servicer = health.aio.HealthServicer()
        self._names = ["", *service_names]

    async def start_not_serving(self) -> None:
        """Every name known and NOT_SERVING until the server is bound."""
        for name in self._names:
            await self.servicer.set(name, NOT_SERVING)

    async def set_all(self, status: int) -> None:
        for name in self._names:
            await self.servicer.set(name, status)

    async def enter_shutdown(self) -> None:
        """NOT_SERVING for good: later `set` calls are ignored."""
        await self.servicer.enter_graceful_shutdown()

    async def _check(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await refuse_undecodable(request, context)
        return await self.servicer.Check(request, context)

    async def _watch(self, request: Any, context: grpc.aio.ServicerContext) -> None:
        await refuse_undecodable(request, context)
        await self.servicer.Watch(request, context)

    def add_to(self, server: grpc.aio.Server) -> None:
        decode = request_decoder(health_pb2.HealthCheckRequest)
        encode = health_pb2.HealthCheckResponse.SerializeToString
        handlers = {
            "Check": grpc.unary_unary_rpc_method_handler(
                self._check, request_deserializer=decode, response_serializer=encode
            ),
            "Watch": grpc.unary_stream_rpc_method_handler(
                self._watch, request_deserializer=decode, response_serializer=encode
            ),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(HEALTH_SERVICE, handlers),))
