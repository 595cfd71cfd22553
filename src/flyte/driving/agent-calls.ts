// The bridge's plugin calls made to a Flyte connector, in Flyte's agent protocol (flyteidl.service): Create is
// CreateTask, Get GetTask, Delete DeleteTask, Do ExecuteTaskSync, Describe the descriptor the host announced. The
// executor cannot tell the difference: it sends the bridge's requests and reads the bridge's answers, so a connector
// gets every piece of the machinery (retries, timeouts, quotas, aborts, secrets redaction, events) as a kit's plugin.
//
// Rule 3 (docs/architecture.md, failure rules) says Create runs at most once per <plugin>.<execution>.<attempt>. A
// kit keeps it with the pb_creates bucket; a Flyte connector knows nothing of the bridge, so the host keeps it for
// it, with the kit's own code and key scheme: a retried Create (a host that died mid-step, a lost answer, another
// host) gets the resource meta of the first, and the connector starts its work once.
import { create, type DescMessage, type DescMethodBiDiStreaming, type DescMethodUnary, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { CREATE_CALL, createKey, IdempotentCalls, isPluginError, type IdempotencyStore } from "@plugin-bridge/kit";
import { AsyncAgentService, SyncAgentService } from "@plugin-bridge/protocol/flyteidl/service/agent_pb.js";
import {
  AsyncPluginService,
  CorePluginService,
  CreateResponseSchema,
  DeleteResponseSchema,
  DescribeResponseSchema,
  DoResponseSchema,
  GetResponseSchema,
  PluginMetadataService,
  SyncPluginService,
  type PluginDescriptor,
} from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import type { TaskContext } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import type { Logger } from "../../log.js";
import { PluginCallError } from "../../registry/plugin-client.js";
import { LiteralError } from "../literals.js";
import { connectorMessage } from "./connector-message.js";
import { reportedPhase, UnknownPhaseError } from "./resource-phase.js";
import { flyteTask, attemptOutputPrefix, type FlyteTask } from "./task-request.js";

/** Where a call goes: an announced instance of a Flyte connector's agent. */
export interface AgentTarget {
  endpoint: string;
  instanceId: string;
  descriptor?: PluginDescriptor;
}

/** How the calls reach the connector: the host's channels (src/registry/plugin-client.ts); failures are PluginCallErrors. */
export interface AgentTransport {
  unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    target: AgentTarget,
    request: MessageInitShape<I>,
    timeoutMs: number,
    metadata: grpc.Metadata,
  ): Promise<MessageShape<O>>;
  /** Sends every request, closes the sending side, and resolves with the first answer. */
  firstAnswer<I extends DescMessage, O extends DescMessage>(
    method: DescMethodBiDiStreaming<I, O>,
    target: AgentTarget,
    requests: ReadonlyArray<MessageInitShape<I>>,
    timeoutMs: number,
    metadata: grpc.Metadata,
  ): Promise<MessageShape<O>>;
}

export interface FlyteAgentOptions {
  /** The `pb_creates` bucket, shared with every host and kit. */
  creates: IdempotencyStore;
  /** The output prefix configured for the sidecar an instance belongs to; "" when none (or not supervised here). */
  outputPrefixOf: (instanceId: string) => string;
  log: Logger;
}

/** What every bridge plugin request carries; Get and Delete add the resource meta. */
interface PluginRequest {
  context?: TaskContext;
  resourceMeta?: Uint8Array;
}

/** The executor never cancels a plugin call; the deadline bounds it. */
const NEVER = new AbortController().signal;

export class FlyteAgentCalls {
  private readonly creates: IdempotentCalls;

  constructor(
    private readonly transport: AgentTransport,
    private readonly options: FlyteAgentOptions,
  ) {
    const log = options.log;
    this.creates = new IdempotentCalls(options.creates, (level, message, fields) => log[level](message, fields), CREATE_CALL);
  }

  /**
   * A call to a Flyte connector's agent: the bridge's plugin methods translated, anything else (health) sent as it
   * is. Rejects with PluginCallError, keeping the connector's gRPC code.
   */
  async call<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    target: AgentTarget,
    request: MessageInitShape<I>,
    timeoutMs: number,
    metadata: grpc.Metadata,
  ): Promise<MessageShape<O>> {
    const { context, resourceMeta = new Uint8Array() } = request as PluginRequest;
    const deadline = Date.now() + timeoutMs;
    try {
      switch (method.parent.typeName) {
        case AsyncPluginService.typeName:
        case SyncPluginService.typeName:
        case CorePluginService.typeName:
          return (await this.plugin(method.localName, target, this.contextOf(context, target), resourceMeta, deadline, metadata)) as MessageShape<O>;
        case PluginMetadataService.typeName:
          return create(DescribeResponseSchema, { plugin: target.descriptor }) as MessageShape<O>;
        default:
          return await this.transport.unary(method, target, request, timeoutMs, metadata);
      }
    } catch (error) {
      throw this.callError(error, target);
    }
  }

  private async plugin(
    operation: string,
    target: AgentTarget,
    context: TaskContext,
    resourceMeta: Uint8Array,
    deadline: number,
    metadata: grpc.Metadata,
  ): Promise<MessageShape<DescMessage>> {
    const type = context.template?.type ?? "";
    // Flyte routes Get and Delete by the task's category (the deprecated task_type for older connectors).
    const category = { taskType: type, taskCategory: { name: type, version: context.template?.typeVersion ?? 0 } };
    switch (operation) {
      case "create":
        return create(CreateResponseSchema, { resourceMeta: await this.createTask(target, context, deadline, metadata) });
      case "get": {
        const outputPrefix = attemptOutputPrefix(this.options.outputPrefixOf(target.instanceId), context);
        const answer = await this.transport.unary(AsyncAgentService.method.getTask, target, { ...category, resourceMeta, outputPrefix }, left(deadline), metadata);
        return create(GetResponseSchema, reportedPhase(answer.resource));
      }
      case "delete":
        await this.transport.unary(AsyncAgentService.method.deleteTask, target, { ...category, resourceMeta }, left(deadline), metadata);
        return create(DeleteResponseSchema);
      case "do": {
        const task = this.task(target, context);
        const answer = await this.transport.firstAnswer(
          SyncAgentService.method.executeTaskSync,
          target,
          // flytekit reads exactly these two messages: the header, then the inputs.
          [
            { part: { case: "header", value: { template: task.template, outputPrefix: task.outputPrefix, taskExecutionMetadata: task.taskExecutionMetadata } } },
            { part: { case: "inputs", value: task.inputs } },
          ],
          left(deadline),
          metadata,
        );
        if (answer.res.case !== "header") {
          throw new PluginCallError(grpc.status.INTERNAL, "ExecuteTaskSync answered without a header (Flyte sends the resource there)", target.instanceId);
        }
        return create(DoResponseSchema, reportedPhase(answer.res.value.resource));
      }
      default:
        throw new PluginCallError(grpc.status.UNIMPLEMENTED, `a Flyte connector has no ${operation}: its agents are async or sync`, target.instanceId);
    }
  }

  /** CreateTask at most once per plugin, execution and attempt; the resource meta the connector returned. */
  private async createTask(target: AgentTarget, context: TaskContext, deadline: number, metadata: grpc.Metadata): Promise<Uint8Array> {
    // The inputs are turned into literals first: a task the connector cannot be given fails before any lookup.
    const task = this.task(target, context);
    const key = createKey(target.descriptor?.name ?? "", context.executionId?.id ?? "", context.executionId?.attempt ?? 0);
    return await this.creates.run(key, NEVER, async () => {
      const answer = await this.transport.unary(AsyncAgentService.method.createTask, target, { ...task }, left(deadline), metadata);
      return answer.resourceMeta;
    });
  }

  private task(target: AgentTarget, context: TaskContext): FlyteTask {
    return flyteTask(context, this.options.outputPrefixOf(target.instanceId));
  }

  private contextOf(context: TaskContext | undefined, target: AgentTarget): TaskContext {
    if (!context?.executionId || !context.template) {
      throw new PluginCallError(grpc.status.INVALID_ARGUMENT, "a plugin call needs its context: execution id and template", target.instanceId);
    }
    return context;
  }

  /** Any failure as the call's error, with the connector's (or the store's) gRPC code and a message fit to keep. */
  private callError(error: unknown, target: AgentTarget): unknown {
    if (error instanceof PluginCallError) return new PluginCallError(error.code, connectorMessage(error.details), error.instanceId, { cause: error });
    // Only the Create store's refusal: without it, nobody can tell whether the Create already ran.
    if (isPluginError(error)) return new PluginCallError(error.code, error.message, target.instanceId, { cause: error });
    if (error instanceof LiteralError) return new PluginCallError(grpc.status.INVALID_ARGUMENT, error.message, target.instanceId);
    if (error instanceof UnknownPhaseError) return new PluginCallError(grpc.status.INTERNAL, error.message, target.instanceId);
    return error;
  }
}

/** The time left before `deadline`, at least 1 ms (a call past its deadline fails DEADLINE_EXCEEDED at once). */
function left(deadline: number): number {
  return Math.max(1, deadline - Date.now());
}
