// The NATS inputs a host reads from sidecars, as cases: PluginAnnouncement values put into the `pb_plugins` bucket
// and PushedStatus messages published on `pb.push.<id>`, each from a valid (signed or deliberately not) seed,
// mutated, hostile, or re-signed after mutation with a key allowed to sign it (so the host's checks past the
// signature see garbage too). Signatures follow docs/security.md: HMAC-SHA256 keyed with the sidecar's token.
import { createHmac } from "node:crypto";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { PluginAnnouncementSchema, PushedStatusSchema } from "@plugin-bridge/protocol/pluginbridge/v1/coordination_pb.js";
import { PluginInstanceSchema, PluginKind, type PluginInstance } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { ErrorKind, Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { hostileInput } from "./hostile.js";
import { mutateBinary } from "./mutate.js";
import { Random } from "./random.js";

export function announcementSignature(token: string, ttlSeconds: number, signedInstance: Uint8Array): Uint8Array {
  const ttl = Buffer.alloc(4);
  ttl.writeUInt32BE(ttlSeconds >>> 0);
  return createHmac("sha256", token).update("pbv1").update(ttl).update(signedInstance).digest();
}

export function pushSignature(token: string, payload: Uint8Array): string {
  return createHmac("sha256", token).update("pbv1push").update(payload).digest("hex");
}

/** An announcement of `instance`, signed with `token` as `keyId` (or unsigned, with the instance in the clear). */
export function announcement(instance: PluginInstance, signer?: { keyId: string; token: string }, ttlSeconds = 15): Uint8Array {
  if (!signer) return toBinary(PluginAnnouncementSchema, create(PluginAnnouncementSchema, { instance, ttlSeconds }));
  const signedInstance = toBinary(PluginInstanceSchema, instance);
  return toBinary(PluginAnnouncementSchema, create(PluginAnnouncementSchema, {
    ttlSeconds,
    signedInstance,
    keyId: signer.keyId,
    signature: announcementSignature(signer.token, ttlSeconds, signedInstance),
  }));
}

/** A live-looking instance of a plugin at an endpoint nobody serves. */
export function fakeInstance(instanceId: string, plugin: string, taskType: string, endpoint = "127.0.0.1:9"): PluginInstance {
  return create(PluginInstanceSchema, {
    instanceId,
    endpoint,
    descriptor: { name: plugin, version: "6.6.6", kind: PluginKind.ASYNC, taskTypes: [{ type: taskType, version: 1 }] },
    startedAt: timestampNow(),
    heartbeatAt: timestampNow(),
  });
}

export interface AnnouncementCase {
  key: string;
  value: Uint8Array;
  how: string;
  /** Signed with a key allowed to announce what it names: the host may route it (if it decodes into a plugin). */
  authenticated: boolean;
}

/** Keys the cases write: a few dozen, reused, never a genuine sidecar's; now and then one NATS should refuse. */
function announcementKey(random: Random): string {
  if (random.chance(0.03)) return random.pick(["", ".", "a..b", "a b", "a.*", "a.>", "é.x", "x".repeat(3000), "fuzz.\u0000"]);
  return `fuzz-${random.int(8)}.instance-${random.int(6)}`;
}

/**
 * One announcement case: a seed (a genuine sidecar's signed announcement, an unsigned one, one signed by a key
 * that may not announce its plugin, one the fuzz signer may announce) mutated, hostile, random, or its instance
 * mutated and then signed again by the fuzz signer, whose announcements the host may route.
 */
export function announcementCase(
  random: Random,
  seeds: ReadonlyArray<{ value: Uint8Array; name: string }>,
  signer: { keyId: string; token: string; plugin: string },
): AnnouncementCase {
  const key = announcementKey(random);
  const seed = random.pick(seeds);
  const roll = random.float();
  if (roll < 0.55) {
    const mutated = mutateBinary(seed.value, random);
    return { key, value: mutated.bytes, how: `${seed.name} ${mutated.how}`, authenticated: false };
  }
  if (roll < 0.7) {
    const hostile = hostileInput(random, PluginAnnouncementSchema, { binary: seed.value, json: "{}" }, false, 1024 * 1024, random.chance(0.02));
    if (hostile) return { key, value: hostile.bytes, how: `${seed.name} ${hostile.how}`, authenticated: false };
  }
  if (roll < 0.75) return { key, value: random.bytes(random.range(0, 300)), how: "random", authenticated: false };
  // The signer's own instance, mutated (or made hostile) inside, then signed again: the signature holds, the
  // content is garbage. The host may route it only as the signer's plugin.
  const instance = fakeInstance(`signed-${random.int(6)}`, signer.plugin, `${signer.plugin}-type`);
  const instanceBytes = toBinary(PluginInstanceSchema, instance);
  const inner = random.chance(0.7)
    ? mutateBinary(instanceBytes, random)
    : hostileInput(random, PluginInstanceSchema, { binary: instanceBytes, json: "{}" }, false, 512 * 1024, false) ?? mutateBinary(instanceBytes, random);
  const ttlSeconds = random.pick([0, 1, 15, 0xffffffff]);
  const value = toBinary(PluginAnnouncementSchema, create(PluginAnnouncementSchema, {
    ttlSeconds,
    signedInstance: inner.bytes,
    keyId: signer.keyId,
    signature: announcementSignature(signer.token, ttlSeconds, inner.bytes),
  }));
  return { key, value, how: `re-signed ttl=${ttlSeconds} ${inner.how}`, authenticated: true };
}

export interface PushCase {
  subject: string;
  payload: Uint8Array;
  headers: Record<string, string>;
  how: string;
}

/** Phases as the generated enum knows them: a record must never hold another. */
export const KNOWN_PHASES: ReadonlySet<number> = new Set(Object.values(Phase).filter((value): value is number => typeof value === "number"));

/**
 * One push case about `victim`: a status for its attempt from its instance (success with outputs, running, a
 * failure), mutated or hostile, on its subject (or another), with headers that do not sign it for the instance's
 * key (none, garbage, another kit's key, the right key over other bytes), or, with `signCorrectly`, signed by
 * the instance's own key after mutation (a sidecar that holds its token and sends garbage).
 */
export function pushCase(
  random: Random,
  victim: { id: string; instanceId: string },
  keys: { own: { keyId: string; token: string }; other: { keyId: string; token: string } },
  signCorrectly: boolean,
): PushCase {
  const phaseInfo = random.pick([
    { phase: Phase.SUCCESS, reason: "pushed" },
    { phase: Phase.RUNNING, reason: "pushed running" },
    { phase: Phase.RETRYABLE_FAILURE, reason: "x", error: { code: "Pushed", message: "bad", kind: ErrorKind.SYSTEM } },
  ]);
  const seed = toBinary(PushedStatusSchema, create(PushedStatusSchema, {
    executionId: victim.id,
    attempt: 1,
    instanceId: victim.instanceId,
    phaseInfo,
    outputs: { pushed: true, n: 1, list: [1, "a"] } as never,
  }));
  const roll = random.float();
  let payload: Uint8Array;
  let how: string;
  if (roll < 0.1) {
    payload = seed;
    how = "seed";
  } else if (roll < 0.75) {
    ({ bytes: payload, how } = mutateBinary(seed, random));
  } else if (roll < 0.95) {
    const hostile = hostileInput(random, PushedStatusSchema, { binary: seed, json: "{}" }, false, 1024 * 1024, random.chance(0.02));
    ({ bytes: payload, how } = hostile ?? mutateBinary(seed, random));
  } else {
    payload = random.bytes(random.range(0, 200));
    how = "random";
  }
  const subjectId = random.chance(0.9) ? victim.id : random.pick([random.word(), `${victim.id}x`, "*", ">", "a.b"]);
  const headers: Record<string, string> = {};
  if (signCorrectly) {
    headers["Pb-Key-Id"] = keys.own.keyId;
    headers["Pb-Signature"] = pushSignature(keys.own.token, payload);
    how += " signed";
  } else {
    const signing = random.int(5);
    if (signing === 1) {
      headers["Pb-Key-Id"] = random.pick(["", keys.own.keyId, "nobody", "x".repeat(300)]);
      headers["Pb-Signature"] = random.pick(["", "zz", "0".repeat(64), "g".repeat(64), Buffer.from(random.bytes(32)).toString("hex")]);
      how += " garbage-signature";
    } else if (signing === 2) {
      headers["Pb-Key-Id"] = keys.other.keyId;
      headers["Pb-Signature"] = pushSignature(keys.other.token, payload);
      how += " other-key";
    } else if (signing === 3) {
      headers["Pb-Key-Id"] = keys.own.keyId;
      headers["Pb-Signature"] = pushSignature(keys.own.token, Uint8Array.from([...payload, 0]));
      how += " signature-of-other-bytes";
    } else {
      how += " unsigned";
    }
  }
  return { subject: `pb.push.${subjectId}`, payload, headers, how };
}
