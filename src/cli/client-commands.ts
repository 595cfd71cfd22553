// The commands that talk to a running host as an SDK would: plugins ls, run, get, watch, abort, ls. Tables for
// people, `--json` (proto3 JSON, one object per line) for scripts, and exit codes that say how a task ended.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { create, fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createBridgeClient, createBridgeTransport, type BridgeClient } from "@plugin-bridge/kit/sdk";
import { ReplicaState, SidecarService, type SupervisedReplica } from "@plugin-bridge/protocol/pluginbridge/v1/sidecar_service_pb.js";
import { PluginInstanceSchema, PluginKind } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { Phase, TaskExecutionMetadataSchema } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import {
  CreateTaskRequestSchema,
  TaskEventSchema,
  TaskExecutionSchema,
  type TaskEvent,
  type TaskExecution,
} from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { parse as parseYaml } from "yaml";
import { table } from "./table.js";

/** How a command ended; `run` and `watch` say how the task ended. */
export const EXIT = { success: 0, taskFailed: 1, usage: 2, taskAborted: 3, unreachable: 4, refused: 5 } as const;

export const clientUsage = `Client commands (all take --url, default $PLUGIN_BRIDGE_URL or http://127.0.0.1:8080, and --json; for a host
with authentication, the token in $PLUGIN_BRIDGE_API_TOKEN, and for https:// --ca, --cert, --key PEM files or
$PLUGIN_BRIDGE_API_CA, _CERT, _KEY):
  plugins ls [--type T]              live plugin instances: versions, kinds, endpoints, task types, state (the
                                     supervisor's for sidecars this host runs), heartbeat age, restarts
  sidecars ls                        the sidecars this host supervises: replicas, state, pid, restarts, last exit
  upgrade SIDECAR                    start new replicas from the sidecar's entry in the host's config file as it
                                     reads now, route to them, then drain and stop the old ones; a new replica that
                                     does not serve is stopped and the old ones keep serving (exit 5)
  run FILE [--namespace N] [--idempotency-key K] [--detach]
                                     submit a task from a JSON or YAML file ({template, inputs?, metadata?}, proto3
                                     JSON names) and follow it to the end with a progress line
  get ID                             one execution
  watch ID                           its events from the first, until the end
  abort ID [--reason R]              abort it
  ls [--namespace N] [--phase P ...] [--limit N]   executions, newest last
Exit codes: 0 success (for run and watch: the task ended SUCCESS), 1 the task failed, 2 usage or a bad file,
3 the task was aborted, 4 the host could not be reached, 5 the host refused the request (its message says why).`;

const phaseName = (phase: Phase | undefined): string => (Phase[phase ?? Phase.UNSPECIFIED] ?? String(phase));
const exitFor = (phase: Phase | undefined): number =>
  phase === Phase.SUCCESS ? EXIT.success : phase === Phase.ABORTED ? EXIT.taskAborted : EXIT.taskFailed;

export interface Common {
  client: BridgeClient;
  /** The host's supervised sidecars (operators). */
  sidecars: Client<typeof SidecarService>;
  json: boolean;
  out: (line: string) => void;
}

/** A PEM file the command line or the environment names, read now; a file that cannot be read is a usage error. */
function pemFile(flag: string, file: string | undefined): Buffer | undefined {
  if (!file) return undefined;
  try {
    return readFileSync(file);
  } catch (error) {
    throw new UsageError(`--${flag} ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

export function common(values: { url?: string; json?: boolean; ca?: string; cert?: string; key?: string }): Common {
  const baseUrl = values.url ?? process.env.PLUGIN_BRIDGE_URL ?? "http://127.0.0.1:8080";
  // The token comes from PLUGIN_BRIDGE_API_TOKEN (the SDK reads it): never a flag, which `ps` would show.
  const ca = pemFile("ca", values.ca ?? process.env.PLUGIN_BRIDGE_API_CA);
  const cert = pemFile("cert", values.cert ?? process.env.PLUGIN_BRIDGE_API_CERT);
  const key = pemFile("key", values.key ?? process.env.PLUGIN_BRIDGE_API_KEY);
  const tls = baseUrl.startsWith("https:") ? { ...(ca && { ca }), ...(cert && { cert }), ...(key && { key }) } : undefined;
  const options = { baseUrl, protocol: "grpc" as const, ...(tls && { tls }) };
  return {
    client: createBridgeClient(options),
    sidecars: createClient(SidecarService, createBridgeTransport(options)),
    json: values.json ?? false,
    out: (line) => process.stdout.write(line + "\n"),
  };
}

export const shared = {
  url: { type: "string" },
  json: { type: "boolean" },
  ca: { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
} as const;

function eventLine(event: TaskEvent): string {
  const info = event.phaseInfo;
  const error = info?.error ? ` [${info.error.code}] ${info.error.message}` : "";
  return `#${event.sequence} attempt ${event.attempt} ${phaseName(info?.phase)}${info?.reason ? `: ${info.reason}` : ""}${error}`;
}

/** Turns the host's refusals into exit codes with their message; anything else is thrown on. */
export async function guarded(run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (error) {
    if (!(error instanceof ConnectError)) throw error;
    process.stderr.write(`plugin-bridge: ${Code[error.code]}: ${error.rawMessage}\n`);
    return error.code === Code.Unavailable ? EXIT.unreachable : EXIT.refused;
  }
}

async function follow(c: Common, id: string, progress: boolean): Promise<number> {
  let last: TaskEvent | undefined;
  const tty = progress && process.stderr.isTTY && !c.json;
  for await (const event of c.client.watch(id)) {
    last = event;
    if (c.json) c.out(JSON.stringify(toJson(TaskEventSchema, event)));
    else if (tty) process.stderr.write(`\r\x1b[K${id} ${eventLine(event)}`);
    else c.out(`${id} ${eventLine(event)}`);
  }
  if (tty) process.stderr.write("\n");
  if (!c.json && last?.phaseInfo?.phase === Phase.SUCCESS && last.outputs) c.out(JSON.stringify(last.outputs));
  return exitFor(last?.phaseInfo?.phase);
}

function readTaskFile(file: string, namespace: string | undefined, idempotencyKey: string | undefined) {
  let parsed: unknown;
  try {
    parsed = parseYaml(readFileSync(file, "utf8"));
  } catch (error) {
    throw new UsageError(`${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed) || !("template" in parsed)) {
    throw new UsageError(`${file}: must hold an object with a "template" (and optionally "inputs", "metadata")`);
  }
  try {
    const request = fromJson(CreateTaskRequestSchema, parsed as JsonValue);
    if (namespace) {
      request.metadata ??= create(TaskExecutionMetadataSchema);
      request.metadata.namespace = namespace;
    }
    if (idempotencyKey) request.idempotencyKey = idempotencyKey;
    return request;
  } catch (error) {
    throw new UsageError(`${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** "serving", "backing-off", … as the supervisor says it. */
export const replicaStateName = (state: ReplicaState): string => (ReplicaState[state] ?? String(state)).toLowerCase().replaceAll("_", "-");

/**
 * The replicas the host supervises, by endpoint: an instance lives at its replica's endpoint, also when the host
 * announces several instances for one replica (a Flyte connector's agents). None from a host that supervises nothing.
 */
async function supervisedReplicas(c: Common): Promise<Map<string, SupervisedReplica>> {
  const { sidecars } = await c.sidecars.listSidecars({});
  return new Map(sidecars.flatMap((sidecar) => sidecar.replicas.map((replica) => [replica.endpoint, replica] as const)));
}

/** A command line or a file that cannot be used: exit 2 with the message. */
export class UsageError extends Error {}

function executionRows(executions: TaskExecution[]): string[][] {
  return executions.map((e) => [
    e.id,
    e.metadata?.namespace ?? "",
    `${e.template?.type ?? ""}@${e.template?.typeVersion ?? 0}`,
    phaseName(e.phaseInfo?.phase),
    String(e.attempt),
    e.updatedAt ? new Date(Number(e.updatedAt.seconds) * 1000).toISOString() : "",
  ]);
}

export async function clientCommand(command: string, argv: string[]): Promise<number> {
  if (command === "plugins") {
    const { values, positionals } = parseArgs({ args: argv, options: { ...shared, type: { type: "string" } }, allowPositionals: true, strict: true });
    if (positionals[0] !== "ls") throw new UsageError(`plugins: the only subcommand is "ls"`);
    const c = common(values);
    return await guarded(async () => {
      const [{ plugins }, supervised] = await Promise.all([
        c.client.registry.listPlugins({ taskType: values.type ?? "" }),
        supervisedReplicas(c),
      ]);
      const instances = plugins.flatMap((plugin) => plugin.instances);
      if (c.json) {
        for (const instance of instances) c.out(JSON.stringify(toJson(PluginInstanceSchema, instance)));
        return EXIT.success;
      }
      const now = Date.now();
      c.out(table(["PLUGIN", "VERSION", "KIND", "INSTANCE", "ENDPOINT", "TASK TYPES", "STATE", "HEARTBEAT", "RESTARTS"], instances.map((i) => {
        const replica = supervised.get(i.endpoint);
        return [
          i.descriptor?.name ?? "",
          i.descriptor?.version ?? "",
          PluginKind[i.descriptor?.kind ?? PluginKind.UNSPECIFIED] ?? "",
          i.instanceId,
          i.endpoint,
          (i.descriptor?.taskTypes ?? []).map((t) => `${t.type}@${t.version}`).join(","),
          // Draining is what routing sees; for a replica this host supervises, its supervisor knows more.
          i.draining ? "draining" : replica ? replicaStateName(replica.state) : "serving",
          i.heartbeatAt ? `${Math.max(0, Math.round((now - Number(i.heartbeatAt.seconds) * 1000) / 1000))}s ago` : "",
          replica ? String(replica.restarts) : "-",
        ];
      })));
      return EXIT.success;
    });
  }
  if (command === "run") {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...shared, namespace: { type: "string" }, "idempotency-key": { type: "string" }, detach: { type: "boolean" } },
      allowPositionals: true,
      strict: true,
    });
    if (positionals.length !== 1) throw new UsageError("run: name one task file");
    const request = readTaskFile(positionals[0]!, values.namespace, values["idempotency-key"]);
    const c = common(values);
    return await guarded(async () => {
      const { execution } = await c.client.raw.createTask(request);
      if (!execution) throw new Error("the host answered without an execution");
      if (values.detach) {
        c.out(c.json ? JSON.stringify(toJson(TaskExecutionSchema, execution)) : execution.id);
        return EXIT.success;
      }
      if (!c.json) process.stderr.write(`${execution.id} submitted\n`);
      return await follow(c, execution.id, true);
    });
  }
  const { values, positionals } = parseArgs({
    args: argv,
    options: { ...shared, reason: { type: "string" }, namespace: { type: "string" }, phase: { type: "string", multiple: true }, limit: { type: "string" } },
    allowPositionals: true,
    strict: true,
  });
  const c = common(values);
  const id = (): string => {
    if (positionals.length !== 1) throw new UsageError(`${command}: name one execution id`);
    return positionals[0]!;
  };
  switch (command) {
    case "get":
    case "abort": {
      const executionId = id();
      return await guarded(async () => {
        const execution = command === "get" ? await c.client.get(executionId) : await c.client.abort(executionId, values.reason ?? "");
        if (c.json) c.out(JSON.stringify(toJson(TaskExecutionSchema, execution)));
        else {
          c.out(table(["ID", "NAMESPACE", "TASK", "PHASE", "ATTEMPT", "UPDATED"], executionRows([execution])));
          if (execution.phaseInfo?.reason) c.out(`reason: ${execution.phaseInfo.reason}`);
          if (execution.phaseInfo?.error) c.out(`error: [${execution.phaseInfo.error.code}] ${execution.phaseInfo.error.message}`);
          if (execution.outputs) c.out(`outputs: ${JSON.stringify(execution.outputs)}`);
        }
        return EXIT.success;
      });
    }
    case "watch": {
      const executionId = id();
      return await guarded(async () => await follow(c, executionId, false));
    }
    case "ls": {
      const limit = values.limit === undefined ? 100 : Number(values.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new UsageError("ls: --limit must be a whole number ≥ 1");
      const phases = (values.phase ?? []).map((name) => {
        const phase = Phase[name.toUpperCase().replace(/^(PHASE_)?/, "") as keyof typeof Phase];
        if (phase === undefined) throw new UsageError(`ls: unknown phase "${name}"`);
        return phase;
      });
      return await guarded(async () => {
        const executions: TaskExecution[] = [];
        for await (const execution of c.client.listAll({ namespace: values.namespace ?? "", phases })) {
          executions.push(execution);
          if (executions.length >= limit) break;
        }
        if (c.json) for (const execution of executions) c.out(JSON.stringify(toJson(TaskExecutionSchema, execution)));
        else c.out(table(["ID", "NAMESPACE", "TASK", "PHASE", "ATTEMPT", "UPDATED"], executionRows(executions)));
        return EXIT.success;
      });
    }
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}
