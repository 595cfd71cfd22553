// Generated TaskService / PluginRegistryService clients over each protocol the host's one port speaks.
import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { PluginRegistryService } from "@plugin-bridge/protocol/pluginbridge/v1/registry_service_pb.js";
import { TaskService, type TaskEvent } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { eventually } from "./eventually.js";

export { eventually };

export type Protocol = "grpc" | "connect-binary" | "connect-json" | "grpc-web";
export const PROTOCOLS: Protocol[] = ["grpc", "connect-binary", "connect-json", "grpc-web"];

export function transport(baseUrl: string, protocol: Protocol): Transport {
  switch (protocol) {
    case "grpc":
      return createGrpcTransport({ baseUrl });
    case "connect-binary":
      return createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: true });
    case "connect-json":
      return createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: false });
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl, httpVersion: "1.1" });
  }
}

export function taskClient(baseUrl: string, protocol: Protocol = "grpc"): Client<typeof TaskService> {
  return createClient(TaskService, transport(baseUrl, protocol));
}

export function registryClient(baseUrl: string, protocol: Protocol = "grpc"): Client<typeof PluginRegistryService> {
  return createClient(PluginRegistryService, transport(baseUrl, protocol));
}

/** Waits until the host routes to `count` live instances of the plugin named `name`. */
export async function waitForPlugin(baseUrl: string, name: string, count = 1): Promise<void> {
  const registry = registryClient(baseUrl, "connect-binary");
  await eventually(`plugin ${name} with ${count} live instance(s)`, async () => {
    const { plugins } = await registry.listPlugins({});
    const plugin = plugins.find((p) => p.name === name);
    return plugin && plugin.instances.filter((i) => !i.draining).length >= count ? true : undefined;
  }, 300, 100);
}

/** The Connect code a call fails with, or "ok". */
export async function codeOf(call: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await call;
    return "ok";
  } catch (error) {
    return ConnectError.from(error).code;
  }
}

/**
 * An execution's final event, watched as a careful client does: a stream cut with UNAVAILABLE (the host could not
 * reach NATS in time, under load) is resumed from the next sequence, a bounded number of times.
 */
export async function finalEvent(client: Client<typeof TaskService>, id: string, resumes = 20): Promise<TaskEvent | undefined> {
  let last: TaskEvent | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      for await (const { event } of client.watchTask({ id, fromSequence: (last?.sequence ?? 0n) + 1n })) last = event ?? last;
      return last;
    } catch (error) {
      if (ConnectError.from(error).code !== Code.Unavailable || attempt >= resumes) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}
