// Who calls the public API, and what they may see. With clients configured (`auth.clients` in the config file),
// every call but health checks must name an identity: a bearer token, or a client certificate the TLS port
// verified against its client CA. Each identity is allowed some namespaces: executions elsewhere are
// PERMISSION_DENIED and never listed. Only admin identities reach SidecarService (they restart processes).
import { createHash, timingSafeEqual } from "node:crypto";
import type { TLSSocket } from "node:tls";
import { Code, ConnectError, createContextKey, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import type * as http from "node:http";
import type * as http2 from "node:http2";

/** A caller the configuration names. */
export interface ClientIdentity {
  name: string;
  /** The namespaces it may use; "*" for all. */
  namespaces: "*" | ReadonlySet<string>;
  /** May call SidecarService. */
  admin: boolean;
}

/** How a configured client proves who it is: a token's SHA-256, or a certificate subject's common name. */
export interface ClientCredential {
  identity: ClientIdentity;
  tokenSha256?: Buffer;
  certificateCommonName?: string;
}

/** What the TLS port learned of the peer: a verified client certificate's common name. */
interface Peer {
  verifiedCommonName?: string;
}

/** Set per request by the API server (connect-node `contextValues`), read by the interceptor. */
export const PEER = createContextKey<Peer>({});
const IDENTITY = createContextKey<ClientIdentity | undefined>(undefined);

/** Services every caller may reach: probes. Reflection describes the API to authenticated callers only. */
const OPEN_SERVICES = new Set(["grpc.health.v1.Health"]);
const ADMIN_SERVICES = new Set(["pluginbridge.v1.SidecarService"]);

const sha256 = (text: string): Buffer => createHash("sha256").update(text, "utf8").digest();

/** The context values of a request: the verified peer certificate, read from the TLS socket it came on. */
export function peerOf(request: http.IncomingMessage | http2.Http2ServerRequest): Peer {
  const socket = request.socket as Partial<TLSSocket>;
  if (!socket.authorized || typeof socket.getPeerCertificate !== "function") return {};
  const subject = socket.getPeerCertificate().subject as { CN?: string | string[] } | undefined;
  const commonName = Array.isArray(subject?.CN) ? subject.CN[0] : subject?.CN;
  return commonName ? { verifiedCommonName: commonName } : {};
}

export class Authenticator {
  constructor(private readonly credentials: readonly ClientCredential[]) {}

  /** Whether calls must authenticate at all (clients are configured). */
  get enabled(): boolean {
    return this.credentials.length > 0;
  }

  /** The identity a request proves, or undefined. A token is checked against every client in constant time. */
  identify(authorization: string | null, peer: Peer): ClientIdentity | undefined {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "")?.[1];
    if (bearer !== undefined) {
      const presented = sha256(bearer);
      let found: ClientIdentity | undefined;
      for (const credential of this.credentials) {
        if (credential.tokenSha256 && timingSafeEqual(credential.tokenSha256, presented)) found ??= credential.identity;
      }
      return found;
    }
    if (peer.verifiedCommonName === undefined) return undefined;
    return this.credentials.find((credential) => credential.certificateCommonName === peer.verifiedCommonName)?.identity;
  }

  /** The interceptor that authenticates every call and keeps the identity for the handlers. */
  interceptor(): Interceptor {
    return (next) => async (request) => {
      if (!this.enabled || OPEN_SERVICES.has(request.service.typeName)) return await next(request);
      const identity = this.identify(request.header.get("authorization"), request.contextValues.get(PEER));
      if (!identity) {
        // One message for a missing, malformed or unknown credential: a caller learns nothing about which it was.
        throw new ConnectError("a bearer token or client certificate this host knows is required", Code.Unauthenticated);
      }
      if (ADMIN_SERVICES.has(request.service.typeName) && !identity.admin) {
        throw new ConnectError(`identity "${identity.name}" may not call ${request.service.typeName}`, Code.PermissionDenied);
      }
      request.contextValues.set(IDENTITY, identity);
      return await next(request);
    };
  }
}

/** What a handler's caller may do with namespaces; everything when authentication is off. */
export class NamespaceAccess {
  private constructor(private readonly identity: ClientIdentity | undefined) {}

  static of(ctx: HandlerContext): NamespaceAccess {
    return new NamespaceAccess(ctx.values.get(IDENTITY));
  }

  allows(namespace: string): boolean {
    const allowed = this.identity?.namespaces;
    return allowed === undefined || allowed === "*" || allowed.has(namespace);
  }

  /** PERMISSION_DENIED for a namespace the caller names and may not use. */
  checkNamespace(namespace: string): void {
    if (!this.allows(namespace)) {
      throw new ConnectError(`identity "${this.identity!.name}" may not use namespace "${namespace}"`, Code.PermissionDenied);
    }
  }

  /** PERMISSION_DENIED for an execution in a namespace the caller may not use; the message does not name it. */
  checkExecution(id: string, namespace: string): void {
    if (!this.allows(namespace)) {
      throw new ConnectError(`identity "${this.identity!.name}" may not see execution "${id}"`, Code.PermissionDenied);
    }
  }
}
