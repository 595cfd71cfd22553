// The security settings as the host uses them: every certificate, key, credentials file and secret the
// configuration names is read at start, so a missing file or variable stops the host before anything runs
// ("nothing starts half-configured"), and the values never pass through the flat settings or the logs.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { ClientCredential } from "./api/auth.js";
import type { AuthSpec, RemoteSidecarSpec, SecretRef } from "./config-file.js";
import type { Settings } from "./config.js";

/** The smallest API token accepted: shorter ones are guessable. */
const MIN_TOKEN_LENGTH = 16;
/** The smallest sidecar secret accepted, in bytes. */
const MIN_SIDECAR_SECRET_BYTES = 32;

export interface SecurityConfig {
  /** TLS on the public port. */
  tls?: { cert: Buffer; key: Buffer; clientCa?: Buffer };
  /** How the host proves itself to NATS, and which server it trusts. */
  nats: { credentials?: Buffer; tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer } };
  /** API callers; none: the API is open (bind it to loopback). */
  clients: ClientCredential[];
  /** Derives sidecar tokens; set, only signed sidecar announcements count. */
  sidecarSecret?: Buffer;
  remoteSidecars: RemoteSidecarSpec[];
}

/** The security settings' file paths, among the flat settings of config.ts. */
export type SecurityPaths = Pick<
  Settings,
  "listenTlsCert" | "listenTlsKey" | "listenTlsClientCa" | "natsCredentials" | "natsTlsCa" | "natsTlsCert" | "natsTlsKey"
>;

/** A security setting that cannot be used; the message names the setting. */
export class SecurityConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SecurityConfigError";
  }
}

function readFile(file: string, setting: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new SecurityConfigError(`${setting}: cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

const optionalFile = (file: string, setting: string): Buffer | undefined => (file ? readFile(file, setting) : undefined);

function readSecret(ref: SecretRef, setting: string, env: NodeJS.ProcessEnv): string {
  const value = "file" in ref ? readFile(ref.file, `${setting}.file`).toString("utf8").trim() : env[ref.env]?.trim();
  if (!value) throw new SecurityConfigError(`${setting}: ${"file" in ref ? `${ref.file} is empty` : `environment variable ${ref.env} is not set`}`);
  return value;
}

/** The sidecar secret a reference names (`auth.sidecars.secret`), checked for length. */
export function readSidecarSecret(ref: SecretRef, env: NodeJS.ProcessEnv): Buffer {
  const secret = Buffer.from(readSecret(ref, "auth.sidecars.secret", env), "utf8");
  if (secret.length < MIN_SIDECAR_SECRET_BYTES) {
    throw new SecurityConfigError(`auth.sidecars.secret: must be at least ${MIN_SIDECAR_SECRET_BYTES} bytes`);
  }
  return secret;
}

export function loadSecurity(paths: SecurityPaths, auth: AuthSpec, env: NodeJS.ProcessEnv): SecurityConfig {
  if (Boolean(paths.listenTlsCert) !== Boolean(paths.listenTlsKey)) {
    throw new SecurityConfigError("listen.tls: cert and key go together");
  }
  if (paths.listenTlsClientCa && !paths.listenTlsCert) throw new SecurityConfigError("listen.tls.clientCa: needs cert and key");
  if (Boolean(paths.natsTlsCert) !== Boolean(paths.natsTlsKey)) throw new SecurityConfigError("nats.tls: cert and key go together");
  const tls = paths.listenTlsCert
    ? {
        cert: readFile(paths.listenTlsCert, "listen.tls.cert"),
        key: readFile(paths.listenTlsKey, "listen.tls.key"),
        ...(paths.listenTlsClientCa && { clientCa: readFile(paths.listenTlsClientCa, "listen.tls.clientCa") }),
      }
    : undefined;
  const natsTls = {
    ca: optionalFile(paths.natsTlsCa, "nats.tls.ca"),
    cert: optionalFile(paths.natsTlsCert, "nats.tls.cert"),
    key: optionalFile(paths.natsTlsKey, "nats.tls.key"),
  };

  const clients = auth.clients.map((client, index): ClientCredential => {
    const setting = `auth.clients[${index}]`;
    if (client.certificate && !tls?.clientCa) throw new SecurityConfigError(`${setting}.certificate: needs listen.tls.clientCa to verify it`);
    const token = client.token && readSecret(client.token, `${setting}.token`, env);
    if (token !== undefined && token.length < MIN_TOKEN_LENGTH) {
      throw new SecurityConfigError(`${setting}.token: must be at least ${MIN_TOKEN_LENGTH} characters`);
    }
    return {
      identity: { name: client.name, namespaces: client.namespaces.includes("*") ? "*" : new Set(client.namespaces), admin: client.admin },
      ...(token !== undefined && { tokenSha256: createHash("sha256").update(token, "utf8").digest() }),
      ...(client.certificate && { certificateCommonName: client.certificate.commonName }),
    };
  });
  const sidecarSecret = auth.sidecarSecret && readSidecarSecret(auth.sidecarSecret, env);
  if (auth.remoteSidecars.length > 0 && !sidecarSecret) throw new SecurityConfigError("auth.sidecars.remote: needs auth.sidecars.secret to issue their tokens");
  return {
    ...(tls && { tls }),
    nats: {
      ...(paths.natsCredentials && { credentials: readFile(paths.natsCredentials, "nats.credentials") }),
      ...(Object.values(natsTls).some(Boolean) && { tls: natsTls }),
    },
    clients,
    ...(sidecarSecret && { sidecarSecret }),
    remoteSidecars: auth.remoteSidecars,
  };
}
