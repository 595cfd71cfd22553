// A sidecar's proof of identity towards the hosts: the token it was given and the name it was issued for. With
// one, the kit signs every announcement (announce.ts) and every push (serve.ts), so that a host requiring sidecar
// authentication routes work to it and applies its pushes, and nobody else with access to NATS can pose as it.
// The token is a secret: it lives only in a private field here and leaves this module as HMACs, never as text, so
// it cannot reach a log line, NATS, an error or a span by accident.
import { createHmac } from "node:crypto";

/** The NATS message headers of a signed push. */
export const PUSH_KEY_ID_HEADER = "Pb-Key-Id";
export const PUSH_SIGNATURE_HEADER = "Pb-Signature";

/** Prefixes that keep an announcement's signature from ever passing as a push's, and the other way round. */
const ANNOUNCEMENT_DOMAIN = Buffer.from("pbv1", "ascii");
const PUSH_DOMAIN = Buffer.from("pbv1push", "ascii");

export class SidecarToken {
  readonly #key: Buffer;

  /** `id`: the name the token was issued for, which hosts look the token up by; not a secret. */
  constructor(
    readonly id: string,
    token: string,
  ) {
    this.#key = Buffer.from(token, "utf8");
  }

  /** HMAC-SHA256 over "pbv1" || ttlSeconds (4 bytes, big-endian) || signedInstance. */
  signAnnouncement(ttlSeconds: number, signedInstance: Uint8Array): Uint8Array {
    const ttl = Buffer.alloc(4);
    ttl.writeUInt32BE(ttlSeconds);
    return createHmac("sha256", this.#key).update(ANNOUNCEMENT_DOMAIN).update(ttl).update(signedInstance).digest();
  }

  /** The headers of a push whose payload is exactly `payload`: the key id and the HMAC-SHA256, lowercase hex. */
  pushHeaders(payload: Uint8Array): Record<string, string> {
    const signature = createHmac("sha256", this.#key).update(PUSH_DOMAIN).update(payload).digest("hex");
    return { [PUSH_KEY_ID_HEADER]: this.id, [PUSH_SIGNATURE_HEADER]: signature };
  }
}

/** An empty value counts as unset, as an exported-but-empty environment variable usually means. */
function given(value: string | undefined): string | undefined {
  return value === "" ? undefined : value;
}

/**
 * The sidecar's token from serve's options, else from PLUGIN_BRIDGE_TOKEN and PLUGIN_BRIDGE_TOKEN_ID; undefined
 * when neither half is given. One half without the other is a mistake in the deployment, refused at start rather
 * than running unsigned (and unrouted by a host that requires signatures) without a word.
 */
export function sidecarToken(
  options: { token?: string; tokenId?: string },
  env: NodeJS.ProcessEnv = process.env,
): SidecarToken | undefined {
  const token = given(options.token ?? env.PLUGIN_BRIDGE_TOKEN);
  const id = given(options.tokenId ?? env.PLUGIN_BRIDGE_TOKEN_ID);
  if (token === undefined && id === undefined) return undefined;
  if (id === undefined) {
    throw new Error("a token needs the id it was issued for: PLUGIN_BRIDGE_TOKEN_ID (serve option tokenId) is not set");
  }
  if (token === undefined) {
    throw new Error(`token id ${JSON.stringify(id)} needs its token: PLUGIN_BRIDGE_TOKEN (serve option token) is not set`);
  }
  return new SidecarToken(id, token);
}
