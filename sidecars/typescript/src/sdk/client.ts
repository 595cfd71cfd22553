// The SDK client: submit tasks to a plugin-bridge host, follow them, abort and list them, and check `custom`
// against the plugin's specification before sending it. A thin layer over the generated TaskService and
// PluginRegistryService with Connect's Node transports, so the same client speaks Connect, gRPC or gRPC-Web to
// the host's one port. Every call carries the application's active trace context (trace-context.ts) and, when
// there is one, the caller's token; an https:// base URL connects with TLS (auth.ts).
import { create, type JsonObject, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { PluginRegistryService } from "@plugin-bridge/protocol/pluginbridge/v1/registry_service_pb.js";
import {
  TaskService,
  type ListTasksResponse,
  type TaskEvent,
  type TaskExecution,
} from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import {
  TaskExecutionMetadataSchema,
  type Phase,
  type TaskTemplate,
} from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { bearerHeader, bearerToken, tlsNodeOptions, type BridgeTlsOptions } from "./auth.js";
import { customProblem } from "./custom-problem.js";
import { addingHeaders, withHeaders } from "./request-headers.js";
import { taskSchema, type TaskSchema } from "./schema.js";
import { DEFAULT_SPECIFICATION_CACHE_MS, SpecificationCache, type TaskSpecification } from "./specifications.js";
import { traceContextInterceptor, withTraceContext } from "./trace-context.js";

export type BridgeProtocol = "connect" | "grpc" | "grpc-web";

export interface BridgeClientOptions {
  /** The host's public address, such as "http://127.0.0.1:8080"; "https://…" connects with TLS. */
  baseUrl: string;
  /** Default "connect". */
  protocol?: BridgeProtocol;
  /** Binary protobuf instead of JSON (Connect and gRPC-Web; gRPC is always binary). */
  useBinaryFormat?: boolean;
  /** "2" for gRPC (and the default there); "1.1" is the default for Connect and gRPC-Web. */
  httpVersion?: "1.1" | "2";
  /**
   * Sent as `authorization: Bearer <token>` on every call, also through `transport`. Default:
   * $PLUGIN_BRIDGE_API_TOKEN, unless `headers` has an authorization of its own. ($PLUGIN_BRIDGE_TOKEN is a
   * sidecar's and never read here.)
   */
  token?: string;
  /** For an https:// `baseUrl`: a CA bundle to trust instead of Node's, and a client certificate for mutual TLS. */
  tls?: BridgeTlsOptions;
  /** Added to every request. */
  headers?: Record<string, string>;
  interceptors?: Interceptor[];
  /**
   * Use this transport instead of building one from the options above; calls still carry the trace context and
   * the token.
   */
  transport?: Transport;
  /** How long a fetched specification is reused, in milliseconds; 0 asks the host every time. Default 10 000. */
  specificationCacheMs?: number;
}

export interface SubmitOptions {
  /** The task's inputs, as JSON. */
  inputs?: JsonObject;
  /** Namespace, labels, owner and the like. */
  metadata?: MessageInitShape<typeof TaskExecutionMetadataSchema>;
  /** Makes the submit safe to repeat: the same key returns the same execution. */
  idempotencyKey?: string;
  /**
   * Check `template.custom` against the plugin's specification first (`validate()`); a template that fails
   * throws, and nothing is sent. Default false.
   */
  validate?: boolean;
  signal?: AbortSignal;
}

export interface WatchOptions {
  /** Replay from this event sequence (1 is the first); default all. */
  fromSequence?: number | bigint;
  signal?: AbortSignal;
}

export interface RunOptions extends SubmitOptions {
  /** Called for every event, the last one included. */
  onEvent?: (event: TaskEvent) => void;
}

export interface ListOptions {
  namespace?: string;
  phases?: Phase[];
  pageSize?: number;
  pageToken?: string;
  signal?: AbortSignal;
}

export interface BridgeClient {
  /** Stores a new execution and returns it; answers once the host made it durable. */
  submit(template: TaskTemplate, options?: SubmitOptions): Promise<TaskExecution>;
  /** The execution's events: recorded ones first, then new ones; ends after the terminal event. */
  watch(id: string, options?: WatchOptions): AsyncIterable<TaskEvent>;
  /** Submits and follows to the end; resolves with the terminal event. */
  run(template: TaskTemplate, options?: RunOptions): Promise<TaskEvent>;
  get(id: string, options?: { signal?: AbortSignal }): Promise<TaskExecution>;
  abort(id: string, reason?: string, options?: { signal?: AbortSignal }): Promise<TaskExecution>;
  /** One page of executions. */
  list(options?: ListOptions): Promise<ListTasksResponse>;
  /** Every execution matching the filter, page after page. */
  listAll(options?: Omit<ListOptions, "pageToken">): AsyncIterable<TaskExecution>;
  /**
   * The specification a live, non-draining instance declares for (type, version), from the host's plugin
   * registry; reused for `specificationCacheMs`. Throws NOT_FOUND for an unknown type or version (naming the
   * versions served) and FAILED_PRECONDITION for a specification that does not resolve.
   */
  specification(type: string, version: number, options?: { signal?: AbortSignal }): Promise<TaskSpecification>;
  /**
   * Resolves when `template.custom` parses as its plugin's specification (proto3 JSON, unknown fields refused),
   * or when the plugin declares none. Otherwise throws INVALID_ARGUMENT with the message CreateTask would give:
   * `template.custom.<path>: <problem> (template.custom must parse as <message>)`; and what `specification` throws.
   */
  validate(template: TaskTemplate, options?: { signal?: AbortSignal }): Promise<void>;
  /** `specification` with a readable description for people (`text`). */
  schema(type: string, version: number, options?: { signal?: AbortSignal }): Promise<TaskSchema>;
  /** The generated client, for anything not wrapped here. */
  readonly raw: Client<typeof TaskService>;
  /** The generated PluginRegistryService client. */
  readonly registry: Client<typeof PluginRegistryService>;
}

function fixedHeaders(headers: Record<string, string>): Interceptor {
  return addingHeaders((request) => {
    for (const [name, value] of Object.entries(headers)) request.set(name, value);
  });
}

/**
 * The Connect transport the options ask for; its calls carry the caller's token and the application's active
 * trace context.
 */
export function createBridgeTransport(options: BridgeClientOptions): Transport {
  const token = bearerToken(options.token, options.headers);
  const interceptors = [
    ...(token !== undefined ? [addingHeaders(bearerHeader(token))] : []),
    ...(options.headers ? [fixedHeaders(options.headers)] : []),
    ...(options.interceptors ?? []),
    traceContextInterceptor,
  ];
  const nodeOptions = tlsNodeOptions(options.baseUrl, options.tls);
  const protocol = options.protocol ?? "connect";
  if (protocol === "grpc") {
    if (options.httpVersion === "1.1") throw new Error("gRPC needs HTTP/2: use httpVersion \"2\" or another protocol");
    return createGrpcTransport({ baseUrl: options.baseUrl, interceptors, nodeOptions });
  }
  const common = {
    baseUrl: options.baseUrl,
    interceptors,
    useBinaryFormat: options.useBinaryFormat ?? false,
    nodeOptions,
  };
  const http = options.httpVersion === "2" ? { httpVersion: "2" as const } : { httpVersion: "1.1" as const };
  return protocol === "grpc-web"
    ? createGrpcWebTransport({ ...common, ...http })
    : createConnectTransport({ ...common, ...http });
}

/** An application's own transport, with the headers the SDK adds to every call. */
function ownTransport(transport: Transport, options: BridgeClientOptions): Transport {
  // `headers` belongs to the transports the SDK builds: it cannot hold this transport's authorization.
  const token = bearerToken(options.token, undefined);
  return withTraceContext(token !== undefined ? withHeaders(transport, bearerHeader(token)) : transport);
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`the host answered without ${what}`);
  return value;
}

/** A client for a plugin-bridge host's TaskService and PluginRegistryService. */
export function createBridgeClient(options: BridgeClientOptions): BridgeClient {
  const transport = options.transport ? ownTransport(options.transport, options) : createBridgeTransport(options);
  const raw = createClient(TaskService, transport);
  const registry = createClient(PluginRegistryService, transport);
  const specifications = new SpecificationCache(registry, options.specificationCacheMs ?? DEFAULT_SPECIFICATION_CACHE_MS);

  const validateIfAsked = async (template: TaskTemplate, submit: SubmitOptions = {}) => {
    if (submit.validate) await client.validate(template, { signal: submit.signal });
  };

  const request = (template: TaskTemplate, submit: SubmitOptions = {}) => ({
    template,
    inputs: submit.inputs,
    metadata: submit.metadata,
    idempotencyKey: submit.idempotencyKey ?? "",
  });

  const client: BridgeClient = {
    raw,
    registry,
    async submit(template, submit) {
      await validateIfAsked(template, submit);
      const response = await raw.createTask(request(template, submit), { signal: submit?.signal });
      return required(response.execution, "an execution");
    },
    async *watch(id, watch = {}) {
      const fromSequence = BigInt(watch.fromSequence ?? 0);
      for await (const response of raw.watchTask({ id, fromSequence }, { signal: watch.signal })) {
        if (response.event) yield response.event;
      }
    },
    async run(template, run = {}) {
      await validateIfAsked(template, run);
      let last: TaskEvent | undefined;
      for await (const response of raw.executeTask(request(template, run), { signal: run.signal })) {
        if (!response.event) continue;
        last = response.event;
        run.onEvent?.(last);
      }
      return required(last, "any event");
    },
    async get(id, call) {
      return required((await raw.getTask({ id }, { signal: call?.signal })).execution, "an execution");
    },
    async abort(id, reason = "", call) {
      return required((await raw.abortTask({ id, reason }, { signal: call?.signal })).execution, "an execution");
    },
    async list(list = {}) {
      return await raw.listTasks(
        {
          namespace: list.namespace ?? "",
          phases: list.phases ?? [],
          pageSize: list.pageSize ?? 0,
          pageToken: list.pageToken ?? "",
        },
        { signal: list.signal },
      );
    },
    async *listAll(list = {}) {
      let pageToken = "";
      do {
        const page = await client.list({ ...list, pageToken });
        yield* page.executions;
        // A host that repeats a token would loop forever; stop rather than trust it.
        if (page.nextPageToken === pageToken) break;
        pageToken = page.nextPageToken;
      } while (pageToken);
    },
    async specification(type, version, call) {
      return await specifications.get(type, version, call?.signal);
    },
    async validate(template, call) {
      const { message } = await specifications.get(template.type, template.typeVersion, call?.signal);
      if (!message) return;
      const problem = customProblem(message, template.custom);
      if (problem) throw new ConnectError(`${problem} (template.custom must parse as ${message.typeName})`, Code.InvalidArgument);
    },
    async schema(type, version, call) {
      return taskSchema(await specifications.get(type, version, call?.signal));
    },
  };
  return client;
}

/** TaskExecutionMetadata from a plain object, for callers who build it ahead of `submit`. */
export function executionMetadata(init: MessageInitShape<typeof TaskExecutionMetadataSchema>) {
  return create(TaskExecutionMetadataSchema, init);
}
