// How a sidecar proves who it is to NATS and which NATS it trusts: a .creds file (a user JWT and its NKey seed,
// for NATS in operator mode) and TLS files (the CA that signed the server's certificate, and a client certificate
// and key for a server that asks for one). The settings carry the names of the host's own (natsCredentials,
// natsTlsCa, natsTlsCert, natsTlsKey), the same in every kit. The files are read once, at start, so a mistake in
// the deployment stops serve() naming the setting instead of failing every connect in the background; their
// content goes to the NATS client only, never into a log line or an error.
import { readFileSync } from "node:fs";
import { credsAuthenticator, type ConnectionOptions } from "@nats-io/transport-node";

export interface NatsSecuritySettings {
  /** A NATS .creds file. Default: $PLUGIN_BRIDGE_NATS_CREDENTIALS. */
  natsCredentials?: string;
  /** PEM: the CA to trust for the NATS server's certificate, instead of Node's roots. Default: $PLUGIN_BRIDGE_NATS_TLS_CA. */
  natsTlsCa?: string;
  /** PEM: a client certificate, for a NATS that asks for one; needs `natsTlsKey`. Default: $PLUGIN_BRIDGE_NATS_TLS_CERT. */
  natsTlsCert?: string;
  /** PEM: the client certificate's key; needs `natsTlsCert`. Default: $PLUGIN_BRIDGE_NATS_TLS_KEY. */
  natsTlsKey?: string;
}

/** Each setting's environment variable, as errors name it. */
const VARIABLES: Record<keyof NatsSecuritySettings, string> = {
  natsCredentials: "PLUGIN_BRIDGE_NATS_CREDENTIALS",
  natsTlsCa: "PLUGIN_BRIDGE_NATS_TLS_CA",
  natsTlsCert: "PLUGIN_BRIDGE_NATS_TLS_CERT",
  natsTlsKey: "PLUGIN_BRIDGE_NATS_TLS_KEY",
};

const setting = (name: keyof NatsSecuritySettings): string => `${VARIABLES[name]} (serve option ${name})`;

/**
 * The connection options for serve's settings, each falling back to its environment variable (an empty value
 * counts as unset): an authenticator for the credentials and `tls` for the TLS files. Nothing given, nothing
 * returned: the connection stays exactly as without them.
 */
export function natsSecurity(
  options: NatsSecuritySettings,
  env: NodeJS.ProcessEnv = process.env,
): Pick<ConnectionOptions, "authenticator" | "tls"> {
  const path = (name: keyof NatsSecuritySettings): string | undefined => {
    const value = options[name] ?? env[VARIABLES[name]];
    return value === "" ? undefined : value;
  };
  const [credentials, ca, cert, key] = (["natsCredentials", "natsTlsCa", "natsTlsCert", "natsTlsKey"] as const).map(path);
  if (cert !== undefined && key === undefined) {
    throw new Error(`a NATS client certificate needs its key: ${setting("natsTlsKey")} is not set`);
  }
  if (key !== undefined && cert === undefined) {
    throw new Error(`a NATS client key needs its certificate: ${setting("natsTlsCert")} is not set`);
  }

  const read = (name: keyof NatsSecuritySettings, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new Error(`${setting(name)}: cannot read ${file}: ${(error as Error).message}`);
    }
  };
  const security: Pick<ConnectionOptions, "authenticator" | "tls"> = {};
  if (credentials !== undefined) security.authenticator = credsAuthenticator(read("natsCredentials", credentials));
  if (ca !== undefined || cert !== undefined) {
    // Either one turns TLS on; without a CA, Node's roots decide whom to trust.
    security.tls = {
      ...(ca !== undefined && { ca: read("natsTlsCa", ca).toString("utf8") }),
      ...(cert !== undefined && key !== undefined && {
        cert: read("natsTlsCert", cert).toString("utf8"),
        key: read("natsTlsKey", key).toString("utf8"),
      }),
    };
  }
  return security;
}
