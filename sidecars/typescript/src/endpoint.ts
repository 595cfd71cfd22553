// Where a sidecar listens and how the host should dial it. Unix sockets are the default: no port to pick, no
// network exposure. TCP binds loopback unless told otherwise.
import { existsSync, lstatSync, unlinkSync } from "node:fs";
import { connect } from "node:net";
import os from "node:os";
import path from "node:path";

export type Endpoint =
  | { kind: "unix"; path: string }
  | { kind: "tcp"; host: string; port: number };

/** Parses "unix:/path" (also "unix:///path"; relative paths are made absolute) or "host:port" / ":port". */
export function parseEndpoint(text: string): Endpoint {
  if (text.startsWith("unix:")) {
    let socketPath = text.slice("unix:".length);
    if (socketPath.startsWith("//")) socketPath = socketPath.slice(2);
    if (!socketPath) throw new Error(`endpoint ${JSON.stringify(text)} has no socket path`);
    return { kind: "unix", path: path.resolve(socketPath) };
  }
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text);
  if (!match) throw new Error(`endpoint ${JSON.stringify(text)} is neither unix:/path nor host:port`);
  const host = match[1] ?? match[2] ?? "";
  const port = Number(match[3]);
  if (port > 65_535) throw new Error(`endpoint ${JSON.stringify(text)} has an invalid port`);
  return { kind: "tcp", host: host || "127.0.0.1", port };
}

function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The address grpc-js binds. */
export function bindAddress(endpoint: Endpoint): string {
  return endpoint.kind === "unix" ? `unix:${endpoint.path}` : hostPort(endpoint.host, endpoint.port);
}

/**
 * The address a host dials, exactly as announced: "unix:/abs/path" or "host:port" with the bound port. A
 * wildcard bind is announced as loopback; set an advertised endpoint to reach it from elsewhere.
 */
export function dialAddress(endpoint: Endpoint, boundPort: number): string {
  if (endpoint.kind === "unix") return `unix:${endpoint.path}`;
  const wildcard = endpoint.host === "0.0.0.0" || endpoint.host === "::";
  return hostPort(wildcard ? "127.0.0.1" : endpoint.host, boundPort);
}

/** The default endpoint: a unix socket in the temp directory, named after the instance. */
export function defaultEndpoint(instanceId: string): Endpoint {
  const safe = instanceId.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 64);
  return { kind: "unix", path: path.join(os.tmpdir(), `plugin-bridge-${safe}.sock`) };
}

/**
 * Removes a socket file left by a process that died, so bind does not fail with EADDRINUSE. A socket that
 * still accepts connections belongs to a live process: refuse rather than steal its address.
 */
export async function removeStaleSocket(socketPath: string): Promise<void> {
  if (!existsSync(socketPath)) return;
  if (!lstatSync(socketPath).isSocket()) {
    throw new Error(`${socketPath} exists and is not a socket; refusing to replace it`);
  }
  const live = await new Promise<boolean>((resolve) => {
    const socket = connect(socketPath);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
  if (live) throw new Error(`${socketPath} is in use by a live process`);
  unlinkSync(socketPath);
}
