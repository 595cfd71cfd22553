// Headers the SDK adds to every call it makes, whichever transport carries it: an interceptor on the transports the
// SDK builds, a wrapper around one the application built itself (interceptors cannot be added to it afterwards).
import type { Interceptor, Transport } from "@connectrpc/connect";

/** Adds its headers to one request's headers. */
export type AddHeaders = (headers: Headers) => void;

/** An interceptor that runs `add` on each request's headers, unary and streaming alike. */
export function addingHeaders(add: AddHeaders): Interceptor {
  return (next) => async (request) => {
    add(request.header);
    return await next(request);
  };
}

/** `transport` with `add` run on the headers of every call. */
export function withHeaders(transport: Transport, add: AddHeaders): Transport {
  const added = (header: ConstructorParameters<typeof Headers>[0]): Headers => {
    const headers = new Headers(header);
    add(headers);
    return headers;
  };
  return {
    unary: (method, signal, timeoutMs, header, input, contextValues) =>
      transport.unary(method, signal, timeoutMs, added(header), input, contextValues),
    stream: (method, signal, timeoutMs, header, input, contextValues) =>
      transport.stream(method, signal, timeoutMs, added(header), input, contextValues),
  };
}
