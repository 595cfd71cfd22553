// How the SDK reaches a host that authenticates its callers: a bearer token on every call, and TLS for an https://
// base URL, with the CA bundle to trust and a client certificate for mutual TLS. PLUGIN_BRIDGE_TOKEN is never read
// here: that variable is a sidecar's own token (the kit signs with it), and a program that is both must not send it
// to a host as its caller's credential.
import type { SecureContextOptions } from "node:tls";
import type { AddHeaders } from "./request-headers.js";

/** PEM text, or its bytes (as read from a file). */
export type Pem = string | Uint8Array;

export interface BridgeTlsOptions {
  /** The CA certificate(s) to trust, in place of Node's built-in roots: for a host with a private CA. */
  ca?: Pem;
  /** A client certificate to present, for a host that requires mutual TLS; needs `key`. */
  cert?: Pem;
  /** The client certificate's private key; needs `cert`. */
  key?: Pem;
}

/** The environment variable a caller's token comes from when the `token` option is not given. */
export const API_TOKEN_VARIABLE = "PLUGIN_BRIDGE_API_TOKEN";

/**
 * The token to send: the option, else $PLUGIN_BRIDGE_API_TOKEN unless `headers` already carries an authorization
 * of the caller's own; an empty one counts as none. A `token` together with such a header is refused: one of them
 * would silently lose.
 */
export function bearerToken(
  token: string | undefined,
  headers: Record<string, string> | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const ownAuthorization = Object.keys(headers ?? {}).some((name) => name.toLowerCase() === "authorization");
  if (token) {
    if (ownAuthorization) throw new Error("give the token once: as `token` or as an authorization header, not both");
    return token;
  }
  if (ownAuthorization) return undefined;
  return env[API_TOKEN_VARIABLE] || undefined;
}

/** Sets `authorization: Bearer <token>` on a request. */
export function bearerHeader(token: string): AddHeaders {
  const value = `Bearer ${token}`;
  return (headers) => headers.set("authorization", value);
}

function buffer(pem: Pem): string | Buffer {
  return typeof pem === "string" ? pem : Buffer.from(pem.buffer, pem.byteOffset, pem.byteLength);
}

/**
 * The Node TLS options for `tls`, which both the https module (HTTP/1.1) and http2.connect take; undefined without
 * `tls`. Refused for a base URL that is not https://, where they would be ignored and the calls go out in the clear.
 */
export function tlsNodeOptions(
  baseUrl: string,
  tls: BridgeTlsOptions | undefined,
): Pick<SecureContextOptions, "ca" | "cert" | "key"> | undefined {
  if (!tls) return undefined;
  if (new URL(baseUrl).protocol !== "https:") throw new Error(`tls options need an https:// base URL, not ${baseUrl}`);
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new Error("a client certificate needs both tls.cert and tls.key");
  }
  return {
    ...(tls.ca !== undefined && { ca: buffer(tls.ca) }),
    ...(tls.cert !== undefined && { cert: buffer(tls.cert) }),
    ...(tls.key !== undefined && { key: buffer(tls.key) }),
  };
}
