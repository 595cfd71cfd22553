// The host's configuration file: YAML (JSON is YAML too), one section per concern. Every key is checked at
// start; a wrong key or value is refused with its path (`sidecars[1].replicas: …`) and nothing starts. The file
// maps onto the flat settings of config.ts, which the environment and flags then override.
import { readFileSync } from "node:fs";
import path from "node:path";
import { parseDocument } from "yaml";
import { z } from "zod";

const wholeMs = z.number().int().min(0);
const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** How a supervised sidecar is reached: a unix socket the supervisor names, or a loopback TCP port it picks. */
export type SidecarTransport = "socket" | "tcp";

/**
 * What a supervised sidecar speaks: the bridge's own services (a kit's sidecar, which announces itself), or Flyte's
 * agent protocol (an existing Flyte connector server, which the host announces and translates for).
 */
export type SidecarProtocol = "plugin-bridge" | "flyte-agent";

/** How the host drives a Flyte connector's agents: the PluginProperties a kit's sidecar would declare itself. */
export interface FlyteAgentProperties {
  resyncIntervalMs?: number;
  createTimeoutMs?: number;
  getTimeoutMs?: number;
  deleteTimeoutMs?: number;
  doTimeoutMs?: number;
  maxSystemFailures?: number;
}

/** The settings of a `flyte-agent` sidecar, which a kit's sidecar would say of itself. */
export interface FlyteAgentSettings {
  /** The agents to announce, by the name ListAgents gives (or its slug); undefined: every agent the server lists. */
  agents?: string[];
  /** The plugin version the announcements carry. */
  version: string;
  /** Where a connector may write an attempt's outputs: `<outputPrefix>/<execution>/<attempt>`; "" for none. */
  outputPrefix: string;
  properties: FlyteAgentProperties;
}

/** One sidecar the host starts and keeps alive (src/supervisor/). */
export interface SidecarSpec {
  /** Unique among sidecars: letters, digits, '-' and '_'. Its log lines and instance ids carry it. */
  name: string;
  command: string;
  args: string[];
  /** Added to the host's environment (which the sidecar inherits), before what the supervisor sets. */
  env: Record<string, string>;
  /** Absolute: relative paths in the file are resolved against the file's folder. */
  workingDir: string;
  replicas: number;
  transport: SidecarTransport;
  /** How long a new process may take to answer gRPC health SERVING. */
  startTimeoutMs: number;
  protocol: SidecarProtocol;
  /** Set exactly when `protocol` is "flyte-agent". */
  flyte?: FlyteAgentSettings;
}

/**
 * A Flyte connector server that runs elsewhere (its own Deployment, another machine): every host probes it and,
 * while it serves, announces its agents (src/supervisor/remote-flyte-connector.ts).
 */
export interface FlyteConnectorSpec {
  /** Unique among sidecars and Flyte connectors: letters, digits, '-' and '_'. Its instance ids start with it. */
  name: string;
  /** `host:port`, reached over cleartext gRPC. */
  endpoint: string;
  flyte: FlyteAgentSettings;
}

/** The keys only a `flyte-agent` sidecar takes: a kit's sidecar says these things of itself. */
const FLYTE_ONLY_KEYS = ["agents", "version", "outputPrefix", "properties"] as const;

/** What the host says of a Flyte connector's agents, supervised or remote. */
const flyteAgentKeys = {
  agents: z.array(z.string().min(1)).min(1).optional(),
  version: z.string().min(1).max(128).optional(),
  outputPrefix: z.string().optional(),
  properties: z
    .strictObject({
      resyncIntervalMs: z.number().int().min(1).optional(),
      createTimeoutMs: z.number().int().min(1).optional(),
      getTimeoutMs: z.number().int().min(1).optional(),
      deleteTimeoutMs: z.number().int().min(1).optional(),
      doTimeoutMs: z.number().int().min(1).optional(),
      maxSystemFailures: z.number().int().min(1).optional(),
    })
    .optional(),
};

/** The checked keys as settings, with their defaults. */
function flyteAgentSettings(keys: { agents?: string[]; version?: string; outputPrefix?: string; properties?: FlyteAgentProperties }): FlyteAgentSettings {
  const { agents, version, outputPrefix, properties } = keys;
  return { ...(agents && { agents }), version: version ?? "flyte", outputPrefix: outputPrefix ?? "", properties: properties ?? {} };
}

/** `host:port`: a DNS name, an IPv4 address or a bracketed IPv6 one, and a port 1-65535. */
const ENDPOINT = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?):([0-9]{1,5})$/;

const flyteConnectorSchema = z.strictObject({
  name: z.string().regex(NAME, "must be 1-64 letters, digits, '-' or '_'"),
  endpoint: z.string().refine((endpoint) => {
    const port = ENDPOINT.exec(endpoint)?.[1];
    return port !== undefined && Number(port) >= 1 && Number(port) <= 65535;
  }, "must be host:port (a DNS name, an IPv4 address or [an IPv6 one], and a port 1-65535)"),
  ...flyteAgentKeys,
});

const sidecarSchema = z
  .strictObject({
    name: z.string().regex(NAME, "must be 1-64 letters, digits, '-' or '_'"),
    command: z.string().min(1, "must not be empty"),
    args: z.array(z.string()).default([]),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "is not an environment variable name"), z.string()).default({}),
    workingDir: z.string().min(1).optional(),
    replicas: z.number().int().min(1).max(64).default(1),
    // Unset: a unix socket for the bridge's own sidecars; a Flyte connector server listens on TCP only.
    transport: z.enum(["socket", "tcp"]).optional(),
    startTimeoutMs: z.number().int().min(100).default(30_000),
    protocol: z.enum(["plugin-bridge", "flyte-agent"]).default("plugin-bridge"),
    ...flyteAgentKeys,
  })
  .superRefine((sidecar, issues) => {
    if (sidecar.protocol === "flyte-agent") {
      if (sidecar.transport === "socket") {
        issues.addIssue({ code: "custom", path: ["transport"], message: "a flyte-agent sidecar listens on TCP (the supervisor gives it a loopback port)" });
      }
      return;
    }
    for (const key of FLYTE_ONLY_KEYS) {
      if (sidecar[key] !== undefined) issues.addIssue({ code: "custom", path: [key], message: "only for protocol: flyte-agent" });
    }
  });

type SidecarEntry = z.infer<typeof sidecarSchema>;

/** A checked entry as the supervisor runs it: defaults filled in, the working folder resolved against `folder`. */
function sidecarSpec(entry: SidecarEntry, folder: string): SidecarSpec {
  const { agents, version, outputPrefix, properties, transport, ...common } = entry;
  const spec: SidecarSpec = { ...common, workingDir: path.resolve(folder, entry.workingDir ?? "."), transport: transport ?? "socket" };
  if (entry.protocol !== "flyte-agent") return spec;
  return { ...spec, transport: "tcp", flyte: flyteAgentSettings({ agents, version, outputPrefix, properties }) };
}

/** Where a secret value is read at start: a file (its content, trimmed) or an environment variable. */
export type SecretRef = { file: string } | { env: string };

const secretRefSchema = z.union([
  z.strictObject({ file: z.string().min(1) }),
  z.strictObject({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "is not an environment variable name") }),
]);

const NAMESPACE = /^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$/;

/** An API caller: how it proves who it is, and what it may use. */
export interface ClientSpec {
  name: string;
  token?: SecretRef;
  /** The common name of a client certificate the TLS port's client CA verified. */
  certificate?: { commonName: string };
  /** Namespaces it may use; ["*"] for all ("" is the default namespace). */
  namespaces: string[];
  /** May call SidecarService (list, upgrade). */
  admin: boolean;
}

/**
 * Sidecars not supervised by a host: the plugins each may announce and the task types they may serve. Both are
 * needed because tasks are routed by type: a key allowed only its own plugin name could otherwise claim another
 * plugin's task type and be handed its tasks and secrets.
 */
export interface RemoteSidecarSpec {
  name: string;
  plugins: string[];
  taskTypes: string[];
}

export interface AuthSpec {
  clients: ClientSpec[];
  /** Signs sidecar tokens; set, only announcements signed with one count. */
  sidecarSecret?: SecretRef;
  remoteSidecars: RemoteSidecarSpec[];
}

const clientSchema = z
  .strictObject({
    name: z.string().regex(NAME, "must be 1-64 letters, digits, '-' or '_'"),
    token: secretRefSchema.optional(),
    certificate: z.strictObject({ commonName: z.string().min(1).max(256) }).optional(),
    namespaces: z.array(z.string().refine((ns) => ns === "*" || ns === "" || NAMESPACE.test(ns), "is not a namespace (or \"*\")")).min(1),
    admin: z.boolean().default(false),
  })
  .refine((client) => client.token || client.certificate, "needs a token or a certificate");

const authSchema = z.strictObject({
  clients: z.array(clientSchema).default([]),
  sidecars: z
    .strictObject({
      secret: secretRefSchema.optional(),
      remote: z
        .array(
          z.strictObject({
            name: z.string().regex(NAME, "must be 1-64 letters, digits, '-' or '_'"),
            plugins: z.array(z.string().min(1)).min(1),
            taskTypes: z.array(z.string().min(1)).min(1),
          }),
        )
        .default([]),
    })
    .optional(),
});

const tlsFilesSchema = z.strictObject({ ca: z.string().min(1).optional(), cert: z.string().min(1).optional(), key: z.string().min(1).optional() });

const fileSchema = z.strictObject({
  nats: z
    .strictObject({
      url: z.string().optional(),
      embeddedPort: z.number().int().min(0).max(65535).optional(),
      replicas: z.union([z.literal(1), z.literal(3), z.literal(5)]).optional(),
      dataDir: z.string().min(1).optional(),
      /** A NATS .creds file (user JWT and NKey seed). */
      credentials: z.string().min(1).optional(),
      tls: tlsFilesSchema.optional(),
    })
    .optional(),
  listen: z
    .strictObject({
      host: z.string().min(1).optional(),
      port: z.number().int().min(0).max(65535).optional(),
      readMaxBytes: z.number().int().min(1024).optional(),
      tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1), clientCa: z.string().min(1).optional() }).optional(),
    })
    .optional(),
  auth: authSchema.optional(),
  engine: z
    .strictObject({
      concurrency: z.number().int().min(1).optional(),
      ackWaitMs: z.number().int().min(1000).optional(),
      eventsMaxAgeMs: wholeMs.optional(),
      orphanGraceMs: wholeMs.optional(),
      noInstanceRetryMs: wholeMs.optional(),
      shutdownGraceMs: wholeMs.optional(),
    })
    .optional(),
  secrets: z
    .strictObject({
      dir: z.string().optional(),
      envPrefix: z.string().optional(),
      /** Rules as secret-access.ts reads them, one per entry: `<plugin>=<group>/<key>,…`. */
      access: z.array(z.string()).optional(),
    })
    .optional(),
  sidecars: z.array(sidecarSchema).optional(),
  flyteConnectors: z.array(flyteConnectorSchema).optional(),
});

/** The flat settings the file can set, by their name in config.ts. */
export interface FileSettings {
  natsUrl?: string;
  embeddedNatsPort?: number;
  natsReplicas?: number;
  dataDir?: string;
  listenHost?: string;
  listenPort?: number;
  readMaxBytes?: number;
  concurrency?: number;
  ackWaitMs?: number;
  eventsMaxAgeMs?: number;
  orphanGraceMs?: number;
  noInstanceRetryMs?: number;
  shutdownGraceMs?: number;
  secretsDir?: string;
  secretsEnvPrefix?: string;
  secretAccess?: string;
  listenTlsCert?: string;
  listenTlsKey?: string;
  listenTlsClientCa?: string;
  natsCredentials?: string;
  natsTlsCa?: string;
  natsTlsCert?: string;
  natsTlsKey?: string;
}

export interface ConfigFile {
  settings: FileSettings;
  sidecars: SidecarSpec[];
  flyteConnectors: FlyteConnectorSpec[];
  auth: AuthSpec;
}

/** A file that cannot be used: names the file, the key's path and why. */
export class ConfigFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigFileError";
  }
}

/** `sidecars[1].replicas` from zod's path. */
function keyPath(parts: ReadonlyArray<PropertyKey>): string {
  return parts.map((part, index) => (typeof part === "number" ? `[${part}]` : `${index === 0 ? "" : "."}${String(part)}`)).join("") || "(top level)";
}

export function readConfigFile(file: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigFileError(`config file ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const document = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (document.errors.length > 0) {
    throw new ConfigFileError(`config file ${file}: not YAML: ${document.errors[0]!.message}`);
  }
  const parsed = fileSchema.safeParse(document.toJS() ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => {
      const unknown = issue.code === "unrecognized_keys" ? `unknown key(s) ${issue.keys.join(", ")}` : issue.message;
      return `${keyPath(issue.path)}: ${unknown}`;
    });
    throw new ConfigFileError(`config file ${file}: ${issues.join("; ")}`);
  }
  const { nats, listen, engine, secrets, auth, sidecars = [], flyteConnectors = [] } = parsed.data;
  // One namespace for both lists: a name is the key its announcements' token is issued for.
  const names = new Map<string, string>();
  for (const [list, entries] of [["sidecars", sidecars], ["flyteConnectors", flyteConnectors]] as const) {
    for (const [index, entry] of entries.entries()) {
      const first = names.get(entry.name);
      if (first !== undefined) {
        const where = first === list ? "is used twice" : `is used by ${first} too`;
        throw new ConfigFileError(`config file ${file}: ${list}[${index}].name: "${entry.name}" ${where}`);
      }
      names.set(entry.name, list);
    }
  }
  for (const [list, entries] of [["auth.clients", auth?.clients ?? []], ["auth.sidecars.remote", auth?.sidecars?.remote ?? []]] as const) {
    const seen = new Set<string>();
    for (const [index, entry] of entries.entries()) {
      if (seen.has(entry.name)) throw new ConfigFileError(`config file ${file}: ${list}[${index}].name: "${entry.name}" is used twice`);
      seen.add(entry.name);
    }
  }
  const folder = path.dirname(path.resolve(file));
  const resolve = (relative: string | undefined): string | undefined => (relative === undefined ? undefined : path.resolve(folder, relative));
  const secretRef = (ref: SecretRef | undefined): SecretRef | undefined => (ref && "file" in ref ? { file: path.resolve(folder, ref.file) } : ref);
  const settings: FileSettings = {
    natsUrl: nats?.url,
    embeddedNatsPort: nats?.embeddedPort,
    natsReplicas: nats?.replicas,
    dataDir: nats?.dataDir === undefined ? undefined : path.resolve(folder, nats.dataDir),
    listenHost: listen?.host,
    listenPort: listen?.port,
    readMaxBytes: listen?.readMaxBytes,
    ...engine,
    secretsDir: secrets?.dir === undefined || secrets.dir === "" ? secrets?.dir : path.resolve(folder, secrets.dir),
    secretsEnvPrefix: secrets?.envPrefix,
    secretAccess: secrets?.access?.join(";"),
    listenTlsCert: resolve(listen?.tls?.cert),
    listenTlsKey: resolve(listen?.tls?.key),
    listenTlsClientCa: resolve(listen?.tls?.clientCa),
    natsCredentials: resolve(nats?.credentials),
    natsTlsCa: resolve(nats?.tls?.ca),
    natsTlsCert: resolve(nats?.tls?.cert),
    natsTlsKey: resolve(nats?.tls?.key),
  };
  return {
    settings: Object.fromEntries(Object.entries(settings).filter(([, value]) => value !== undefined)) as FileSettings,
    sidecars: sidecars.map((sidecar) => sidecarSpec(sidecar, folder)),
    flyteConnectors: flyteConnectors.map(({ name, endpoint, ...keys }) => ({ name, endpoint, flyte: flyteAgentSettings(keys) })),
    auth: {
      clients: (auth?.clients ?? []).map((client) => ({ ...client, token: secretRef(client.token) })),
      sidecarSecret: secretRef(auth?.sidecars?.secret),
      remoteSidecars: auth?.sidecars?.remote ?? [],
    },
  };
}
