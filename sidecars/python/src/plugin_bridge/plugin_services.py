"""The plugin's gRPC services: Describe, and the Async, Sync or Core service, calling the author's methods with a
decoded :class:`PluginContext` and turning their results into responses. Each call of the plugin's service is
traced (:mod:`.tracing`)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Dict, Mapping, Optional

import grpc
from google.protobuf import struct_pb2, timestamp_pb2

from pluginbridge.v1 import plugin_pb2, task_pb2

from .context import build_context
from .errors import PluginError
from .grpc_service import CallGate, CallInfo, service_handler
from .idempotency import FINALIZED, IdempotentCalls, create_key, finalize_key
from .log import KitLogger
from .meta import decode_resource_meta, encode_resource_meta
from .phases import PhaseResult, is_terminal_phase
from .plugin import AsyncPlugin, CorePlugin, Plugin, PluginContext, PushFn, SyncPlugin, call_method
from .state import HandleResult, PluginState, state_message, state_of
from .tracing import ServerSpans

METADATA_SERVICE = plugin_pb2.DESCRIPTOR.services_by_name["PluginMetadataService"]
ASYNC_SERVICE = plugin_pb2.DESCRIPTOR.services_by_name["AsyncPluginService"]
SYNC_SERVICE = plugin_pb2.DESCRIPTOR.services_by_name["SyncPluginService"]
CORE_SERVICE = plugin_pb2.DESCRIPTOR.services_by_name["CorePluginService"]


def _plain_json(value: Optional[Mapping[str, Any]], what: str) -> Optional[Dict[str, Any]]:
    """A JSON round trip, so any plain value (tuples, ints, None) fits a Struct; the rest is the plugin's bug."""
    if value is None:
        return None
    try:
        plain = json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError) as error:
        raise PluginError(grpc.StatusCode.INTERNAL, f"{what} is not JSON: {error}") from None
    if not isinstance(plain, dict):
        raise PluginError(grpc.StatusCode.INTERNAL, f"{what} must be a JSON object")
    return plain


def phase_response(
    result: Any, method: str, verb: str = "returned"
) -> tuple[task_pb2.PhaseInfo, Optional[struct_pb2.Struct]]:
    """Checks and completes what a plugin returned from Get, Do or Handle (or gave to a push: ``verb``
    "was given")."""
    if not isinstance(result, PhaseResult) or not isinstance(result.phase_info, task_pb2.PhaseInfo):
        raise PluginError(
            grpc.StatusCode.INTERNAL, f"{method} {verb} no PhaseResult; use phase_success(), phase_running() ..."
        )
    info = task_pb2.PhaseInfo()
    info.CopyFrom(result.phase_info)
    if info.phase == task_pb2.PHASE_UNSPECIFIED:
        raise PluginError(grpc.StatusCode.INTERNAL, f"{method} {verb} PHASE_UNSPECIFIED")
    if not info.HasField("occurred_at"):
        now = timestamp_pb2.Timestamp()
        now.GetCurrentTime()
        info.occurred_at.CopyFrom(now)
    outputs_json = _plain_json(result.outputs, "outputs")
    outputs = None
    if outputs_json is not None:
        outputs = struct_pb2.Struct()
        outputs.update(outputs_json)
    return info, outputs


def metadata_handler(descriptor: plugin_pb2.PluginDescriptor, log: KitLogger) -> grpc.GenericRpcHandler:
    """Describe: the same descriptor every announcement carries (not gated: a draining sidecar still says what it is;
    not traced: it is no step of a task)."""

    async def describe(_request: Any, _info: CallInfo) -> plugin_pb2.DescribeResponse:
        return plugin_pb2.DescribeResponse(plugin=descriptor)

    return service_handler(METADATA_SERVICE, {"Describe": describe}, None, log)


class _Contexts:
    def __init__(self, plugin: Plugin, log: KitLogger, instance_id: str, push: Optional[PushFn]) -> None:
        self._plugin = plugin
        self._log = log
        self._instance_id = instance_id
        self._push = push

    def __call__(self, request: Any, info: CallInfo) -> PluginContext[Any]:
        return build_context(
            self._plugin.specification,
            request.context,
            request.HasField("context"),
            info.cancelled,
            info.deadline,
            self._log,
            self._instance_id,
            self._push,
        )


def async_handler(
    plugin: AsyncPlugin,
    creates: IdempotentCalls,
    log: KitLogger,
    gate: CallGate,
    instance_id: str,
    push: Optional[PushFn] = None,
) -> grpc.GenericRpcHandler:
    """AsyncPluginService over an async plugin, with Create made idempotent by ``creates``."""
    context = _Contexts(plugin, log, instance_id, push)
    encoding = plugin.resource_meta
    assert plugin.create and plugin.get and plugin.delete

    async def create(request: plugin_pb2.CreateRequest, info: CallInfo) -> plugin_pb2.CreateResponse:
        # The context is decoded before the idempotency lookup so a bad `custom` fails fast with its field.
        ctx = context(request, info)
        key = create_key(plugin.name, ctx.execution_id, ctx.attempt)

        async def run_create(cancelled: asyncio.Event) -> bytes:
            log.info("create", execution=ctx.execution_id, attempt=ctx.attempt)
            ctx.cancelled = cancelled  # shared by every caller waiting for this Create
            return encode_resource_meta(encoding, await call_method(plugin.create, ctx))  # type: ignore[arg-type]

        meta = await creates.run(key, info.cancelled, run_create)
        return plugin_pb2.CreateResponse(resource_meta=meta)

    async def get(request: plugin_pb2.GetRequest, info: CallInfo) -> plugin_pb2.GetResponse:
        ctx = context(request, info)
        meta = decode_resource_meta(encoding, request.resource_meta)
        phase_info, outputs = phase_response(await call_method(plugin.get, ctx, meta), "get")  # type: ignore[arg-type]
        return plugin_pb2.GetResponse(phase_info=phase_info, outputs=outputs)

    async def delete(request: plugin_pb2.DeleteRequest, info: CallInfo) -> plugin_pb2.DeleteResponse:
        ctx = context(request, info)
        meta = decode_resource_meta(encoding, request.resource_meta)
        log.info("delete", execution=ctx.execution_id, attempt=ctx.attempt)
        await call_method(plugin.delete, ctx, meta)  # type: ignore[arg-type]
        return plugin_pb2.DeleteResponse()

    spans = ServerSpans(plugin.name, plugin.version, instance_id)
    return service_handler(ASYNC_SERVICE, {"Create": create, "Get": get, "Delete": delete}, gate, log, spans)


def sync_handler(
    plugin: SyncPlugin, log: KitLogger, gate: CallGate, instance_id: str, push: Optional[PushFn] = None
) -> grpc.GenericRpcHandler:
    """SyncPluginService over a sync plugin."""
    context = _Contexts(plugin, log, instance_id, push)
    assert plugin.do

    async def do(request: plugin_pb2.DoRequest, info: CallInfo) -> plugin_pb2.DoResponse:
        ctx = context(request, info)
        phase_info, outputs = phase_response(await call_method(plugin.do, ctx), "do")  # type: ignore[arg-type]
        # DoResponse carries the end of the task: a non-terminal phase would leave the host nothing to poll.
        if not is_terminal_phase(phase_info.phase):
            raise PluginError(
                grpc.StatusCode.INTERNAL,
                f"do returned the non-terminal phase {task_pb2.Phase.Name(phase_info.phase)}; "
                "sync plugins must finish the task",
            )
        return plugin_pb2.DoResponse(phase_info=phase_info, outputs=outputs)

    spans = ServerSpans(plugin.name, plugin.version, instance_id)
    return service_handler(SYNC_SERVICE, {"Do": do}, gate, log, spans)


def _handle_result(result: Any) -> tuple[Any, Optional[PluginState]]:
    """Splits what ``handle`` returned into its phase (checked by phase_response) and its new state."""
    if isinstance(result, PhaseResult):
        return result, None
    if not isinstance(result, HandleResult):
        raise PluginError(
            grpc.StatusCode.INTERNAL,
            "handle returned no HandleResult; return HandleResult(phase_running(...), state) or a PhaseResult",
        )
    if result.state is not None and not isinstance(result.state, PluginState):
        raise PluginError(grpc.StatusCode.INTERNAL, "handle returned a state that is not a PluginState")
    return result.phase, result.state


def core_handler(
    plugin: CorePlugin,
    finalizes: IdempotentCalls,
    log: KitLogger,
    gate: CallGate,
    instance_id: str,
    push: Optional[PushFn] = None,
) -> grpc.GenericRpcHandler:
    """CorePluginService over a core plugin, with Finalize made to run once per attempt by ``finalizes``."""
    context = _Contexts(plugin, log, instance_id, push)
    assert plugin.handle and plugin.abort and plugin.finalize

    async def handle(request: plugin_pb2.HandleRequest, info: CallInfo) -> plugin_pb2.HandleResponse:
        ctx = context(request, info)
        result = await call_method(plugin.handle, ctx, state_of(request))  # type: ignore[arg-type]
        phase, state = _handle_result(result)
        phase_info, outputs = phase_response(phase, "handle")
        return plugin_pb2.HandleResponse(
            phase_info=phase_info,
            state=state_message(state) if state is not None else None,
            outputs=outputs,
        )

    async def abort(request: plugin_pb2.AbortRequest, info: CallInfo) -> plugin_pb2.AbortResponse:
        ctx = context(request, info)
        log.info("abort", execution=ctx.execution_id, attempt=ctx.attempt, reason=request.reason)
        await call_method(plugin.abort, ctx, state_of(request), request.reason)  # type: ignore[arg-type]
        return plugin_pb2.AbortResponse()

    async def finalize(request: plugin_pb2.FinalizeRequest, info: CallInfo) -> plugin_pb2.FinalizeResponse:
        # Decoded before the idempotency lookup, as for Create: a bad `custom` fails fast with its field.
        ctx = context(request, info)
        state = state_of(request)

        async def run_finalize(cancelled: asyncio.Event) -> bytes:
            log.info("finalize", execution=ctx.execution_id, attempt=ctx.attempt)
            ctx.cancelled = cancelled  # shared by every caller waiting for this Finalize
            await call_method(plugin.finalize, ctx, state)  # type: ignore[arg-type]
            return FINALIZED

        await finalizes.run(finalize_key(plugin.name, ctx.execution_id, ctx.attempt), info.cancelled, run_finalize)
        return plugin_pb2.FinalizeResponse()

    spans = ServerSpans(plugin.name, plugin.version, instance_id)
    return service_handler(CORE_SERVICE, {"Handle": handle, "Abort": abort, "Finalize": finalize}, gate, log, spans)
