// The image's HEALTHCHECK: asks the host's grpc.health.v1.Health over Connect JSON (a plain HTTP POST, so no
// gRPC client is needed) and exits 0 only for SERVING. The host answers HTTP 200 with NOT_SERVING while it
// starts and while it drains, so the status code alone would say nothing.
const port = process.env.PLUGIN_BRIDGE_LISTEN_PORT || "8080";
const configured = process.env.PLUGIN_BRIDGE_LISTEN_HOST || "127.0.0.1";
// A wildcard bind is reached on loopback; an explicit address only on itself.
const host = configured === "0.0.0.0" || configured === "::" ? "127.0.0.1" : configured;
const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}/grpc.health.v1.Health/Check`;

try {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: "{}",
    signal: AbortSignal.timeout(2_000),
  });
  const answer = await response.json();
  if (answer.status !== "SERVING") {
    console.error(`health: ${response.status} ${JSON.stringify(answer)}`);
    process.exit(1);
  }
} catch (error) {
  console.error(`health: ${url}: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
