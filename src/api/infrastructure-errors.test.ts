import { Code, ConnectError } from "@connectrpc/connect";
import { errors as nats } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { natsFailuresAreUnavailable } from "./infrastructure-errors.js";

type Next = Parameters<ReturnType<typeof natsFailuresAreUnavailable>>[0];
type Request = Parameters<Next>[0];

const request = { service: { typeName: "pluginbridge.v1.TaskService" }, method: { name: "WatchTask" } } as unknown as Request;
const logged: string[] = [];
const interceptor = natsFailuresAreUnavailable((_level, message) => logged.push(message));

async function codeOf(next: Next): Promise<Code | "ok"> {
  try {
    const response = await interceptor(next)(request);
    if (response.stream) for await (const _ of response.message) void _;
    return "ok";
  } catch (error) {
    return ConnectError.from(error).code;
  }
}

describe("NATS failures in a call", () => {
  it("answer UNAVAILABLE, unary or in a stream, and are logged", async () => {
    expect(await codeOf(async () => { throw new nats.TimeoutError(); })).toBe(Code.Unavailable);
    const stream = (async function* () {
      yield 1;
      throw new nats.ClosedConnectionError();
    })();
    expect(await codeOf(async () => ({ stream: true, message: stream }) as never)).toBe(Code.Unavailable);
    const notEnabled = Object.assign(new Error("jetstream is not enabled"), { name: "JetStreamNotEnabled" });
    expect(await codeOf(async () => { throw notEnabled; })).toBe(Code.Unavailable);
    expect(logged).toHaveLength(3);
  });

  it("leave every other error as it is", async () => {
    expect(await codeOf(async () => { throw new ConnectError("no", Code.NotFound); })).toBe(Code.NotFound);
    expect(await codeOf(async () => { throw new Error("a bug"); })).toBe(Code.Unknown);
    expect(await codeOf(async () => ({ stream: false }) as never)).toBe("ok");
  });
});
