// Runs the NATS cases against the real host in batches, and after each batch checks what the host made of them:
// announcements must never route an instance that is neither a genuine sidecar nor the fuzz signer's own plugin
// (a sentinel announcement, put last, tells when the host has read the batch); pushes must never change an execution
// unless signed by its instance's key, and a signed push of garbage must leave a record the API can still serve,
// with a phase the protocol knows.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import type { KV } from "@nats-io/kv";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { PluginAnnouncementSchema, PushedStatusSchema } from "@plugin-bridge/protocol/pluginbridge/v1/coordination_pb.js";
import { PluginDescriptorSchema, PluginInstanceSchema, type PluginInstance } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import type { TaskService } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { eventually, registryClient, taskClient } from "../helpers/clients.js";
import { announcement, announcementCase, fakeInstance, KNOWN_PHASES, pushCase, pushSignature } from "./nats-cases.js";
import { Random } from "./random.js";
import { runTargets, SEED, type CaseOutcome, type Report } from "./run.js";

export interface Signer {
  keyId: string;
  token: string;
  plugin: string;
}

/** What a genuine instance is: its id, endpoint and descriptor (heartbeats change the rest). */
function identity(instance: PluginInstance): string {
  const descriptor = instance.descriptor ? Buffer.from(toBinary(PluginDescriptorSchema, instance.descriptor)).toString("base64") : "";
  return `${instance.instanceId} ${instance.endpoint} ${descriptor}`;
}

const BATCH = 250;
/** Signed victims a run may replace after a signed push ended them (each costs a task start). */
const MAX_REPLACEMENTS = 40;

/**
 * Announcement cases `count` in all, in batches; after each, the routing table must hold only genuine instances
 * and the signer's plugin, and no conformance task type may route anywhere but to its genuine instances.
 */
export async function fuzzAnnouncements(options: {
  report: Report;
  hostUrl: string;
  kv: KV;
  count: number;
  budgetMs: number;
  genuine: readonly PluginInstance[];
  seeds: ReadonlyArray<{ value: Uint8Array; name: string }>;
  signer: Signer;
}): Promise<void> {
  const { report, kv, signer } = options;
  const target = "nats/announcements";
  const registry = registryClient(options.hostUrl, "connect-binary");
  const genuine = new Set(options.genuine.map(identity));
  const genuineTypes = [...new Set(options.genuine.flatMap((instance) => instance.descriptor?.taskTypes.map((t) => t.type) ?? []))];
  const keysWritten = new Set<string>();
  const started = Date.now();
  for (let first = 0; first < options.count && Date.now() - started < options.budgetMs; first += BATCH) {
    /** Instance ids the batch's unauthenticated cases announced, to name the case behind a bogus instance. */
    const announcedBy = new Map<string, number>();
    await runTargets(report, [{
      target,
      first,
      count: Math.min(BATCH, options.count - first),
      run: async (index): Promise<CaseOutcome> => {
        const made = announcementCase(Random.for(SEED, target, index), options.seeds, signer);
        if (!made.authenticated) {
          try {
            const decoded = fromBinary(PluginAnnouncementSchema, made.value);
            const instanceId = decoded.instance?.instanceId ?? (decoded.signedInstance.length > 0 ? fromBinary(PluginInstanceSchema, decoded.signedInstance).instanceId : "");
            if (instanceId) announcedBy.set(instanceId, index);
          } catch {
            // Does not decode: the host must drop it, which the routing check below sees either way.
          }
        }
        try {
          await kv.put(made.key, made.value);
          keysWritten.add(made.key);
          return { method: "put pb_plugins", label: made.authenticated ? "put (re-signed)" : "put", how: made.how };
        } catch (error) {
          // The client (or the server) refused the key or the size: nothing reached the host.
          return { method: "put pb_plugins", label: `refused: ${String(error).replace(/\d+/g, "N").slice(0, 50)}`, how: made.how };
        }
      },
    }], options.budgetMs);
    // A sentinel put after the batch: once the host routes it, it has read every entry before it.
    const sentinel = fakeInstance(`sentinel-${first}`, signer.plugin, `${signer.plugin}-type`);
    await kv.put("fuzz-sentinel.instance", announcement(sentinel, signer));
    keysWritten.add("fuzz-sentinel.instance");
    const live = await eventually(`the host to read announcement batch ${first}`, async () => {
      const instances = (await registry.listPlugins({})).plugins.flatMap((plugin) => plugin.instances);
      return instances.some((instance) => instance.instanceId === sentinel.instanceId) ? instances : undefined;
    }, 300, 100);
    for (const instance of live) {
      if (genuine.has(identity(instance)) || instance.descriptor?.name === signer.plugin) continue;
      const index = announcedBy.get(instance.instanceId);
      report.find({
        target,
        method: "routing",
        index: index ?? first,
        how: `batch ${first}`,
        label: "BOGUS-ROUTED",
        kind: "an instance that is neither genuine nor the signer's is routable",
        why: `routable after batch ${first}: ${JSON.stringify(toBinaryJson(instance))}${index === undefined ? " (no case of the batch announced that id in the clear)" : ""}`,
      });
    }
    for (const type of genuineTypes) {
      const { plugins } = await registry.listPlugins({ taskType: type });
      for (const instance of plugins.flatMap((plugin) => plugin.instances)) {
        if (genuine.has(identity(instance))) continue;
        report.find({ target, method: "routing", index: first, how: `batch ${first}`, label: "TYPE-TAKEN", kind: `a conformance task type routes to a non-genuine instance`, why: `${type} routes to ${instance.instanceId} (plugin ${instance.descriptor?.name})` });
      }
    }
  }
  // Leave the bucket as the sidecars wrote it.
  for (const key of keysWritten) await kv.purge(key).catch(() => undefined);
}

/**
 * Whether an announcement signed by a key allowed one plugin can claim another plugin's task type: the signer
 * announces its own plugin (a name it may announce) serving `type`. Returns the instance ids `type` then routes
 * to, after the host has read the announcement; the key is removed again.
 */
export async function typeClaimedBySigner(kv: KV, hostUrl: string, signer: Signer, type: string): Promise<string[]> {
  const registry = registryClient(hostUrl, "connect-binary");
  const claim = fakeInstance("claims-another-type", signer.plugin, type);
  const sentinel = fakeInstance("claim-sentinel", signer.plugin, `${signer.plugin}-type`);
  await kv.put("fuzz-claim.instance", announcement(claim, signer));
  await kv.put("fuzz-claim.sentinel", announcement(sentinel, signer));
  try {
    await eventually("the host to read the claim", async () =>
      (await registry.listPlugins({})).plugins.some((plugin) => plugin.instances.some((i) => i.instanceId === sentinel.instanceId)) ? true : undefined, 300, 100);
    return (await registry.listPlugins({ taskType: type })).plugins.flatMap((plugin) => plugin.instances.map((i) => `${i.instanceId} (plugin ${plugin.name})`));
  } finally {
    await kv.purge("fuzz-claim.instance");
    await kv.purge("fuzz-claim.sentinel");
  }
}

function toBinaryJson(instance: PluginInstance): { id: string; endpoint: string; plugin: string | undefined; types: string[] } {
  return { id: instance.instanceId, endpoint: instance.endpoint, plugin: instance.descriptor?.name, types: instance.descriptor?.taskTypes.map((t) => `${t.type}@${t.version}`) ?? [] };
}

export interface Victim {
  id: string;
  type: string;
  instanceId: string;
  /** The sidecar key that signs for the instance, and another kit's. */
  keys: { own: { keyId: string; token: string }; other: { keyId: string; token: string } };
}

/** Starts a task that runs "forever" (a million polls) on `type` and waits for it to be RUNNING. */
export async function startVictim(hostUrl: string, type: string): Promise<string> {
  const client = taskClient(hostUrl);
  const { execution } = await client.createTask({ template: { type, typeVersion: 1, custom: { polls: 1_000_000, echo: "victim" } } });
  const id = execution!.id;
  await eventually(`victim ${id} to run`, async () => ((await client.getTask({ id })).execution?.phaseInfo?.phase === Phase.RUNNING ? true : undefined), 300, 100);
  return id;
}

/**
 * Push cases `count` in all, in batches. Unsigned (or wrongly signed) pushes go to `victims`, whose records must
 * not change; pushes signed by the right key go to `signedVictims`, whose records must stay readable with known
 * phases (an ended one is replaced, a bounded number of times, so later pushes still reach a running execution).
 */
export async function fuzzPushes(options: {
  report: Report;
  hostUrl: string;
  nc: NatsConnection;
  count: number;
  budgetMs: number;
  victims: readonly Victim[];
  signedVictims: Victim[];
}): Promise<void> {
  const { report, nc, victims, signedVictims } = options;
  const target = "nats/pushes";
  const client = taskClient(options.hostUrl, "connect-binary");
  const grpcClient = taskClient(options.hostUrl, "grpc");
  const before = new Map<string, string>();
  const snapshot = async (id: string): Promise<string> => {
    try {
      const execution = (await client.getTask({ id })).execution!;
      return `${Phase[execution.phaseInfo?.phase ?? 0]} events=${execution.lastEventSequence} attempt=${execution.attempt}`;
    } catch (error) {
      return `unreadable: ${String(error).slice(0, 200)}`;
    }
  };
  for (const victim of victims) before.set(victim.id, await snapshot(victim.id));
  let replacements = 0;
  const started = Date.now();
  for (let first = 0; first < options.count && Date.now() - started < options.budgetMs; first += BATCH) {
    await runTargets(report, [{
      target,
      first,
      count: Math.min(BATCH, options.count - first),
      run: async (index): Promise<CaseOutcome> => {
        const random = Random.for(SEED, target, index);
        const signed = random.chance(0.25);
        const victim = random.pick(signed ? signedVictims : victims);
        const made = pushCase(random, victim, victim.keys, signed);
        const headers = natsHeaders();
        for (const [name, value] of Object.entries(made.headers)) headers.set(name, value);
        try {
          nc.publish(made.subject, made.payload, { headers });
          return { method: signed ? "push (signed)" : "push", label: "published", how: made.how };
        } catch (error) {
          return { method: signed ? "push (signed)" : "push", label: `refused: ${String(error).replace(/\d+/g, "N").slice(0, 50)}`, how: made.how };
        }
      },
    }], options.budgetMs);
    await nc.flush();
    // The host applies pushes as they arrive, a few dozen at once: give the batch a moment before looking.
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const victim of victims) {
      const now = await snapshot(victim.id);
      if (now.startsWith("unreadable")) {
        report.find({ target, method: "push", index: first, how: `batch ${first}`, label: "UNREADABLE", kind: `the host could not serve an execution after a batch of pushes: ${now.replace(/\d+/g, "N").slice(0, 80)}`, why: `${victim.id} after the batch from case ${first}: ${now}` });
      } else if (now !== before.get(victim.id)) {
        report.find({ target, method: "push", index: first, how: `batch ${first}`, label: "CHANGED", kind: "an execution changed by pushes not signed by its instance's key", why: `${victim.id} (${victim.type}) was ${before.get(victim.id)}, is ${now}` });
        before.set(victim.id, now);
      }
    }
    await Promise.all(signedVictims.map(async (victim, position) => {
      const problem = await unreadable(grpcClient, victim.id);
      if (problem) report.find({ target, method: "push (signed)", index: first, how: `batch ${first}`, label: "BROKEN-RECORD", kind: `a signed push of garbage left a record the API cannot serve: ${problem.replace(/-?\d+/g, "N").slice(0, 60)}`, why: `${victim.id} (${victim.type}): ${problem}` });
      const phase = (await client.getTask({ id: victim.id }).catch(() => undefined))?.execution?.phaseInfo?.phase;
      if (phase !== Phase.RUNNING && replacements < MAX_REPLACEMENTS) {
        replacements++;
        try {
          signedVictims[position] = { ...victim, id: await startVictim(options.hostUrl, victim.type) };
        } catch (error) {
          // Later pushes keep going to the ended one; the failure itself is worth a look.
          report.find({ target, method: "push (signed)", index: first, how: `batch ${first}`, label: "NO-VICTIM", kind: `a new execution could not start after a batch of pushes: ${String(error).replace(/\d+/g, "N").slice(0, 80)}`, why: String(error) });
        }
      }
    }));
  }
  report.notes.push(`pushes: ${replacements} signed victims ended by a signed push and were replaced`);
}

/** Why the API cannot serve an execution's record and events as the protocol says, or undefined when it can. */
async function unreadable(client: Client<typeof TaskService>, id: string): Promise<string | undefined> {
  try {
    const execution = (await client.getTask({ id })).execution;
    if (!execution) return "GetTask answered no execution";
    if (!KNOWN_PHASES.has(execution.phaseInfo?.phase ?? 0)) return `phase ${execution.phaseInfo?.phase} is not a Phase`;
    // Watch from the start: every event must carry a known phase. A running execution's watch stays open: cut it.
    const cut = new AbortController();
    const timer = setTimeout(() => cut.abort(), 1_000);
    try {
      for await (const { event } of client.watchTask({ id }, { signal: cut.signal })) {
        if (event && !KNOWN_PHASES.has(event.phaseInfo?.phase ?? 0)) return `event ${event.sequence} has phase ${event.phaseInfo?.phase}`;
      }
    } catch (error) {
      if (!cut.signal.aborted) return `WatchTask failed: ${String(error).slice(0, 200)}`;
    } finally {
      clearTimeout(timer);
    }
    return undefined;
  } catch (error) {
    return `GetTask failed: ${String(error).slice(0, 200)}`;
  }
}

/** The host's NATS reconnects so far, from its metrics: a push or a call must never cost it its connection. */
export async function natsReconnects(hostUrl: string): Promise<number> {
  const text = await (await fetch(`${hostUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("plugin_bridge_nats_reconnects_total"));
  return Number(line?.split(" ")[1] ?? 0);
}

/**
 * Publishes a push signed by `signer` (as a sidecar's would be) naming an execution id of 64 KiB, which no host
 * gives: a host must drop it without touching NATS with the id.
 */
export async function pushLongExecutionId(nc: NatsConnection, instanceId: string, signer: { keyId: string; token: string }): Promise<void> {
  const payload = toBinary(PushedStatusSchema, create(PushedStatusSchema, { executionId: "x".repeat(65_536), attempt: 1, instanceId, phaseInfo: { phase: Phase.SUCCESS } }));
  const headers = natsHeaders();
  headers.set("Pb-Key-Id", signer.keyId);
  headers.set("Pb-Signature", pushSignature(signer.token, payload));
  nc.publish("pb.push.long-id", payload, { headers });
  await nc.flush();
}
