// The one place NATS names are built: buckets, streams, subjects and consumers. The sidecar kits use the same
// names (docs/architecture.md lists them); change them only together with every kit.

/** KV bucket holding one key per live sidecar instance: `<plugin name>.<instance id>`. */
export const PLUGINS_BUCKET = "pb_plugins";
/** KV bucket holding one record per execution, keyed by execution id. */
export const EXECUTIONS_BUCKET = "pb_executions";
/** The kits' memory of every effective Create and Finalize (created by whoever comes first, hosts or kits). */
export const CREATES_BUCKET = "pb_creates";
/** KV bucket holding, per plugin that declares a quota, the executions holding its tokens. */
export const QUOTAS_BUCKET = "pb_quotas";
/** Work-queue stream holding one message per live execution. */
export const WORK_STREAM = "PB_WORK";
/** Limits stream holding every phase change of every execution. */
export const EVENTS_STREAM = "PB_EVENTS";
/** The durable pull consumer all hosts share on the WORK stream. */
export const WORK_CONSUMER = "pb-hosts";

const WORK_PREFIX = "pb.work";
const EVENTS_PREFIX = "pb.events";
const PUSH_PREFIX = "pb.push";

export const workSubjects = `${WORK_PREFIX}.>`;
export const eventSubjects = `${EVENTS_PREFIX}.>`;
/** Every plugin's pushed status; hosts share them through this queue group, one host per push. */
export const pushSubjects = `${PUSH_PREFIX}.>`;
export const PUSH_QUEUE = "pb-hosts";

/** Execution ids and namespaces become subject tokens: only these characters may appear in them. */
export const TOKEN_PATTERN = /^[A-Za-z0-9_-]+$/;

/**
 * The longest execution id: hosts give UUIDs, and an id becomes a subject token and part of KV keys, which must stay
 * far below the NATS server's control-line limit (a longer line makes the server drop the connection).
 */
export const MAX_EXECUTION_ID_LENGTH = 64;

/** Whether a value can be an execution id a host gave; anything else is refused before it reaches NATS. */
export function isExecutionId(value: string): boolean {
  return value.length > 0 && value.length <= MAX_EXECUTION_ID_LENGTH && TOKEN_PATTERN.test(value);
}

function token(value: string, what: string): string {
  if (!TOKEN_PATTERN.test(value)) throw new Error(`${what} ${JSON.stringify(value)} is not a valid NATS token`);
  return value;
}

/** The subject of an execution's work item. */
export function workSubject(executionId: string): string {
  return `${WORK_PREFIX}.${token(executionId, "execution id")}`;
}

/** The subject of an execution's events; the namespace first, so one namespace can be followed with a wildcard. */
export function eventSubject(namespace: string, executionId: string): string {
  return `${EVENTS_PREFIX}.${token(namespace, "namespace")}.${token(executionId, "execution id")}`;
}

/** The message id that lets JetStream drop a re-published event (crash recovery) as a duplicate. */
export function eventMessageId(executionId: string, sequence: bigint): string {
  return `${executionId}.${sequence}`;
}

/** The subject a plugin pushes an execution's status on (the kits build the same). */
export function pushSubject(executionId: string): string {
  return `${PUSH_PREFIX}.${token(executionId, "execution id")}`;
}
