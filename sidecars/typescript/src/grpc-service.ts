// A small generic bridge between protobuf-es service descriptors and grpc-js, so the generated `GenService`
// constants are the only description of the wire: no proto-loader, no second code generator. The same
// definitions serve sidecars (server side) and let hosts and tests call them (client side).
import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethod,
  type DescService,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import {
  Client,
  Metadata,
  status,
  type CallOptions,
  type ChannelCredentials,
  type ClientOptions,
  type MethodDefinition,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceDefinition,
  type ServiceError,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { PluginError, toServiceError } from "./errors.js";

/** The grpc-js path of a method: `/package.Service/Method`. */
export function grpcMethodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/** A grpc-js ServiceDefinition for a protobuf-es service, keyed by the methods' local names. */
export function grpcServiceDefinition(service: DescService): ServiceDefinition {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    const input: DescMessage = method.input;
    const output: DescMessage = method.output;
    definition[method.localName] = {
      path: grpcMethodPath(method),
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: (message) => Buffer.from(toBinary(input, message as MessageShape<DescMessage>)),
      requestDeserialize: (bytes) => fromBinary(input, bytes),
      responseSerialize: (message) => Buffer.from(toBinary(output, message as MessageShape<DescMessage>)),
      responseDeserialize: (bytes) => fromBinary(output, bytes),
      originalName: method.localName,
    };
  }
  return definition;
}

/** What a handler gets besides the request. */
export interface CallInfo {
  /** Fires when the client cancels the call or its deadline passes. */
  readonly signal: AbortSignal;
  readonly metadata: Metadata;
  /** The full method path, for logs. */
  readonly path: string;
}

type UnaryImpl<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  info: CallInfo,
) => Promise<MessageInitShape<O>>;

type ServerStreamingImpl<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  send: (response: MessageInitShape<O>) => void,
  info: CallInfo,
) => Promise<void>;

/** The method shapes of a generated service constant, such as `MethodsOf<typeof Health>`. */
export type MethodsOf<S> = S extends GenService<infer Methods> ? Methods : never;

/** Handlers for every unary and server-streaming method of a generated service, keyed by local name. */
export type ServiceImplementation<Methods extends GenServiceMethods> = {
  [K in keyof Methods]: Methods[K] extends { methodKind: "unary"; input: infer I; output: infer O }
    ? I extends DescMessage
      ? O extends DescMessage
        ? UnaryImpl<I, O>
        : never
      : never
    : Methods[K] extends { methodKind: "server_streaming"; input: infer I; output: infer O }
      ? I extends DescMessage
        ? O extends DescMessage
          ? ServerStreamingImpl<I, O>
          : never
        : never
      : never;
};

/**
 * Called as each call starts: may throw (a PluginError) to refuse it, else returns the function called when
 * the call ends. The server uses it to refuse calls while draining and to count calls in flight.
 */
export type CallGate = (method: DescMethod) => () => void;

/**
 * Watches each unary call from its arrival (before the gate) to its answer; serve() gives one to the plugin
 * services when tracing is on (tracing.ts), and none otherwise, so an untraced call pays nothing for it.
 */
export type CallObserver = (method: DescMethod, call: ServerUnaryCall<unknown, unknown>) => ObservedCall;

/** One observed call. */
export interface ObservedCall {
  /** Runs the call's handling (gate, handler) inside the observer's context, such as its span's. */
  run(handle: () => void): void;
  /** The call is answered with `response`. */
  succeeded(response: unknown): void;
  /** The call is answered with `answer`; `thrown` is what the gate or the handler threw. */
  failed(answer: Partial<ServiceError>, thrown: unknown): void;
}

/** An AbortSignal for a server call: the client's cancellation, or the call's own deadline. */
function callSignal(call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onCancelled = (): void =>
    controller.abort(new PluginError(status.CANCELLED, "the call was cancelled or its deadline passed"));
  call.once("cancelled", onCancelled);
  let timer: NodeJS.Timeout | undefined;
  const deadline = call.getDeadline();
  const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
  if (Number.isFinite(deadlineMs)) {
    // grpc-js also reports a passed deadline as "cancelled"; the timer makes sure the plugin hears of it.
    timer = setTimeout(
      () => controller.abort(new PluginError(status.DEADLINE_EXCEEDED, "the call's deadline passed")),
      Math.max(0, deadlineMs - Date.now()),
    );
    timer.unref();
  }
  return {
    signal: controller.signal,
    dispose: () => {
      if (timer) clearTimeout(timer);
      call.removeListener("cancelled", onCancelled);
    },
  };
}

/**
 * Wraps typed handlers into a grpc-js implementation: errors become statuses (see errors.ts). `observe` watches
 * the unary calls (the plugin operations; the only streaming method, health's Watch, is not observed).
 */
export function implementService<Methods extends GenServiceMethods>(
  service: GenService<Methods>,
  implementation: ServiceImplementation<Methods>,
  gate?: CallGate,
  observe?: CallObserver,
): UntypedServiceImplementation {
  const handlers: UntypedServiceImplementation = {};
  const impls = implementation as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const method of (service as DescService).methods) {
    const impl = impls[method.localName];
    if (!impl) throw new Error(`no handler for ${grpcMethodPath(method)}`);
    const path = grpcMethodPath(method);
    const output: DescMessage = method.output;
    if (method.methodKind === "unary") {
      handlers[method.localName] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
        const observed = observe?.(method, call);
        const fail = (error: unknown): void => {
          const answer = toServiceError(error);
          observed?.failed(answer, error);
          callback(answer);
        };
        const succeed = (response: unknown): void => {
          let message: unknown;
          try {
            message = create(output, response as MessageInitShape<DescMessage>);
          } catch (error) {
            // A handler's result that is no response message: answered as the handler's own failure would be.
            fail(error);
            return;
          }
          observed?.succeeded(message);
          callback(null, message);
        };
        const handle = (): void => {
          let leave: (() => void) | undefined;
          try {
            leave = gate?.(method);
          } catch (error) {
            fail(error);
            return;
          }
          const { signal, dispose } = callSignal(call);
          const info: CallInfo = { signal, metadata: call.metadata, path };
          impl(call.request, info).then(
            (response) => {
              dispose();
              leave?.();
              succeed(response);
            },
            (error: unknown) => {
              dispose();
              leave?.();
              fail(error);
            },
          );
        };
        if (observed) observed.run(handle);
        else handle();
      };
    } else if (method.methodKind === "server_streaming") {
      handlers[method.localName] = (call: ServerWritableStream<unknown, unknown>) => {
        let leave: (() => void) | undefined;
        try {
          leave = gate?.(method);
        } catch (error) {
          call.emit("error", toServiceError(error));
          return;
        }
        const { signal, dispose } = callSignal(call);
        const info: CallInfo = { signal, metadata: call.metadata, path };
        const send = (response: unknown): void => {
          if (!signal.aborted) call.write(create(output, response as MessageInitShape<DescMessage>));
        };
        impl(call.request, send, info).then(
          () => {
            dispose();
            leave?.();
            if (!signal.aborted) call.end();
          },
          (error: unknown) => {
            dispose();
            leave?.();
            if (!signal.aborted) call.emit("error", toServiceError(error));
          },
        );
      };
    } else {
      throw new Error(`${path}: ${method.methodKind} methods are not supported by this adapter`);
    }
  }
  return handlers;
}

/** Per-call options of the promise client. */
export interface ClientCallOptions {
  /** Absolute deadline, or milliseconds from now when a number below 10^12. */
  deadline?: Date | number;
  metadata?: Metadata;
  signal?: AbortSignal;
}

/** A promise-based client for a generated service: unary methods return promises, server streams iterate. */
export type PromiseClient<Methods extends GenServiceMethods> = {
  [K in keyof Methods]: Methods[K] extends { methodKind: "unary"; input: infer I; output: infer O }
    ? I extends DescMessage
      ? O extends DescMessage
        ? (request: MessageInitShape<I>, options?: ClientCallOptions) => Promise<MessageShape<O>>
        : never
      : never
    : Methods[K] extends { methodKind: "server_streaming"; input: infer I; output: infer O }
      ? I extends DescMessage
        ? O extends DescMessage
          ? (request: MessageInitShape<I>, options?: ClientCallOptions) => AsyncIterable<MessageShape<O>>
          : never
        : never
      : never;
} & { close(): void };

function callOptions(options: ClientCallOptions | undefined): CallOptions {
  const deadline = options?.deadline;
  if (deadline === undefined) return {};
  return { deadline: typeof deadline === "number" && deadline < 1e12 ? Date.now() + deadline : deadline };
}

/**
 * A grpc-js client for a generated service at `target` ("unix:/path" or "host:port"). Errors reject with the
 * grpc-js ServiceError (its `code` is the gRPC status).
 */
export function createGrpcClient<Methods extends GenServiceMethods>(
  service: GenService<Methods>,
  target: string,
  credentials: ChannelCredentials,
  options?: ClientOptions,
): PromiseClient<Methods> {
  const client = new Client(target, credentials, options);
  const result: Record<string, unknown> = { close: () => client.close() };
  for (const method of (service as DescService).methods) {
    const path = grpcMethodPath(method);
    const input: DescMessage = method.input;
    const output: DescMessage = method.output;
    const serialize = (message: unknown): Buffer =>
      Buffer.from(toBinary(input, create(input, message as MessageInitShape<DescMessage>)));
    const deserialize = (bytes: Buffer): unknown => fromBinary(output, bytes);
    if (method.methodKind === "unary") {
      result[method.localName] = (request: unknown, opts?: ClientCallOptions) =>
        new Promise((resolve, reject) => {
          const call = client.makeUnaryRequest(
            path,
            serialize,
            deserialize,
            request,
            opts?.metadata ?? new Metadata(),
            callOptions(opts),
            (error, response) => (error ? reject(error) : resolve(response)),
          );
          opts?.signal?.addEventListener("abort", () => call.cancel(), { once: true });
        });
    } else if (method.methodKind === "server_streaming") {
      result[method.localName] = (request: unknown, opts?: ClientCallOptions) => ({
        [Symbol.asyncIterator]() {
          const stream = client.makeServerStreamRequest(
            path,
            serialize,
            deserialize,
            request,
            opts?.metadata ?? new Metadata(),
            callOptions(opts),
          );
          opts?.signal?.addEventListener("abort", () => stream.cancel(), { once: true });
          const iterator = stream[Symbol.asyncIterator]() as AsyncIterator<unknown>;
          return {
            next: () => iterator.next(),
            return: async (value?: unknown) => {
              stream.cancel();
              return { done: true, value };
            },
          };
        },
      });
    }
  }
  return result as PromiseClient<Methods>;
}
