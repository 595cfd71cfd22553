// The host's settings and where they come from: defaults, then the YAML config file (config-file.ts, which also
// lists the sidecars to supervise), then environment variables, then command-line flags, each overriding the one
// before. Every default is written down here, where it is set.
import path from "node:path";
import { DEFAULT_READ_MAX_BYTES, DEFAULT_SHUTDOWN_GRACE_MS } from "./api/limits.js";
import { WORK_DUPLICATE_WINDOW_MS } from "./coordination/layout.js";
import { SecretAccess, SecretAccessError } from "./machinery/secret-access.js";
import { ConfigFileError, readConfigFile, type AuthSpec, type FlyteConnectorSpec, type SidecarSpec } from "./config-file.js";
import { loadSecurity, SecurityConfigError, type SecurityConfig } from "./security-config.js";

/** The scalar settings: each has a file key, an environment variable and a flag. */
export interface Settings {
  /** NATS to use. Empty: start a nats-server child with JetStream in `dataDir` (one-machine mode). */
  natsUrl: string;
  /** The embedded nats-server's client port (only without natsUrl). */
  embeddedNatsPort: number;
  /** Copies of each stream and bucket the host creates: 3 (or 5) in a NATS cluster, 1 on one server. */
  natsReplicas: number;
  /** Where the embedded nats-server keeps JetStream's files. */
  dataDir: string;
  /** The API's address. Loopback unless an operator opens it on purpose. */
  listenHost: string;
  listenPort: number;
  /** The largest request message, in bytes; larger ones get RESOURCE_EXHAUSTED. */
  readMaxBytes: number;
  /** Steps this host runs at once. */
  concurrency: number;
  /**
   * How long a step may go without an in-progress ack before another host takes its work item: the takeover time
   * after a host dies. Steps send in-progress acks every third of it, so long plugin calls keep their items.
   */
  ackWaitMs: number;
  /** How long events are kept on the EVENTS stream. */
  eventsMaxAgeMs: number;
  /** A work item whose record never appeared is dropped after this long. */
  orphanGraceMs: number;
  /** How often to look for a plugin instance when a type has none live. */
  noInstanceRetryMs: number;
  /** Secrets directory: `<dir>/<group>/<key>` files, the first secret source. Empty: none. */
  secretsDir: string;
  /** Environment variables `<prefix><GROUP>_<KEY>` are the second secret source. Empty: the environment is not one. */
  secretsEnvPrefix: string;
  /**
   * Which plugin may receive which secret: `<plugin>=<group>/<key>,…;…` with `*` for any plugin, group or key
   * (src/machinery/secret-access.ts). Empty: no plugin receives any secret.
   */
  secretAccess: string;
  /** How long SIGTERM waits for calls and steps in flight. */
  shutdownGraceMs: number;
  /** TLS on the public port: certificate chain and key (PEM files). Empty: cleartext. */
  listenTlsCert: string;
  listenTlsKey: string;
  /** The CA that signs client certificates (PEM); set, the port asks callers for one. */
  listenTlsClientCa: string;
  /** A NATS .creds file for the host's connection. */
  natsCredentials: string;
  /** TLS to NATS: the CA to trust, and a client certificate and key when NATS asks for one (PEM files). */
  natsTlsCa: string;
  natsTlsCert: string;
  natsTlsKey: string;
}

export interface HostConfig extends Settings {
  /** The sidecars the host starts and keeps alive; only from the config file. */
  sidecars: SidecarSpec[];
  /** Flyte connectors running elsewhere, whose agents the host announces while they serve; only from the config file. */
  flyteConnectors: FlyteConnectorSpec[];
  /** Certificates, credentials and secrets as read at start (security-config.ts); the auth part only from the file. */
  security: SecurityConfig;
}

export const DEFAULT_CONFIG: Settings = {
  natsUrl: "",
  embeddedNatsPort: 4222,
  natsReplicas: 1,
  dataDir: path.resolve(".data", "plugin-bridge"),
  listenHost: "127.0.0.1",
  listenPort: 8080,
  readMaxBytes: DEFAULT_READ_MAX_BYTES,
  concurrency: 64,
  ackWaitMs: 6_000,
  eventsMaxAgeMs: 7 * 24 * 3600_000,
  orphanGraceMs: 180_000,
  noInstanceRetryMs: 2_000,
  secretsDir: "",
  secretsEnvPrefix: "",
  secretAccess: "",
  shutdownGraceMs: DEFAULT_SHUTDOWN_GRACE_MS,
  listenTlsCert: "",
  listenTlsKey: "",
  listenTlsClientCa: "",
  natsCredentials: "",
  natsTlsCa: "",
  natsTlsCert: "",
  natsTlsKey: "",
};

/** A setting that cannot be used: names the setting and its source. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

type Key = keyof Settings;
const KEYS = Object.keys(DEFAULT_CONFIG) as Key[];

/** Environment variable of each setting: PLUGIN_BRIDGE_ + the name in upper snake case. */
export const envName = (key: Key): string => "PLUGIN_BRIDGE_" + key.replace(/[A-Z]/g, (c) => "_" + c).toUpperCase();
/** Command-line flag of each setting: the name in kebab case. */
export const flagName = (key: Key): string => key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());

function coerce(key: Key, value: unknown, source: string): string | number {
  const expected = typeof DEFAULT_CONFIG[key];
  if (expected === "number") {
    const number = typeof value === "number" ? value : typeof value === "string" && value.trim() !== "" ? Number(value) : NaN;
    if (!Number.isInteger(number) || number < 0) throw new ConfigError(`${source}: ${key} must be a whole number ≥ 0, not ${JSON.stringify(value)}`);
    return number;
  }
  if (typeof value !== "string") throw new ConfigError(`${source}: ${key} must be a string, not ${JSON.stringify(value)}`);
  return value;
}

/** Merges the sources. `flags` holds the command line's values by setting name, `configFile` its --config. */
export function loadConfig(
  flags: Partial<Record<Key, string>>,
  env: NodeJS.ProcessEnv = process.env,
  configFile: string | undefined = env.PLUGIN_BRIDGE_CONFIG,
): HostConfig {
  const config: Record<string, string | number> = { ...DEFAULT_CONFIG };
  const layers: Array<[string, Partial<Record<Key, unknown>>]> = [];
  let sidecars: SidecarSpec[] = [];
  let flyteConnectors: FlyteConnectorSpec[] = [];
  let auth: AuthSpec = { clients: [], remoteSidecars: [] };
  if (configFile) {
    try {
      const file = readConfigFile(configFile);
      layers.push([`config file ${configFile}`, file.settings]);
      sidecars = file.sidecars;
      flyteConnectors = file.flyteConnectors;
      auth = file.auth;
    } catch (error) {
      if (error instanceof ConfigFileError) throw new ConfigError(error.message);
      throw error;
    }
  }
  layers.push(["environment", Object.fromEntries(KEYS.filter((key) => env[envName(key)] !== undefined).map((key) => [key, env[envName(key)]]))]);
  layers.push(["command line", flags]);
  for (const [source, values] of layers) {
    for (const key of KEYS) if (values[key] !== undefined) config[key] = coerce(key, values[key], source);
  }
  const settings = config as unknown as Settings;
  let security: SecurityConfig;
  try {
    security = loadSecurity(settings, auth, env);
  } catch (error) {
    if (error instanceof SecurityConfigError) throw new ConfigError(configFile ? `config file ${configFile}: ${error.message}` : error.message);
    throw error;
  }
  const result = { ...settings, sidecars, flyteConnectors, security } satisfies HostConfig;
  if (result.listenPort > 65535) throw new ConfigError(`listenPort ${result.listenPort} is not a port`);
  if (result.readMaxBytes < 1024) throw new ConfigError(`readMaxBytes must be at least 1024`);
  if (result.concurrency < 1) throw new ConfigError(`concurrency must be at least 1`);
  if (![1, 3, 5].includes(result.natsReplicas)) throw new ConfigError(`natsReplicas must be 1, 3 or 5, not ${result.natsReplicas}`);
  if (result.ackWaitMs < 1_000) throw new ConfigError(`ackWaitMs must be at least 1000`);
  try {
    SecretAccess.parse(result.secretAccess);
  } catch (error) {
    if (error instanceof SecretAccessError) throw new ConfigError(`secretAccess: ${error.message}`);
    throw error;
  }
  if (result.orphanGraceMs <= WORK_DUPLICATE_WINDOW_MS) {
    throw new ConfigError(`orphanGraceMs must be longer than the work stream's duplicate window (${WORK_DUPLICATE_WINDOW_MS} ms)`);
  }
  return result;
}
