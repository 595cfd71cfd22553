// The core service served in-process, without NATS, by plugins built to misbehave: Handle's results are checked
// like Get's and Do's, an unset state stays unset, errors keep their codes, and concurrent Finalizes share one run.
import path from "node:path";
import { credentials, status } from "@grpc/grpc-js";
import {
  createGrpcClient,
  defineCorePlugin,
  GrpcStatus,
  phaseRunning,
  phaseSuccess,
  PluginError,
  serve,
  type HandleResult,
  type MethodsOf,
  type PluginState,
  type PromiseClient,
  type ServeHandle,
} from "@plugin-bridge/kit";
import { CorePluginService } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { FileSensorSchema } from "@plugin-bridge/protocol/pluginbridge/plugins/sensor/v1/sensor_pb.js";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { eventually, grpcError, taskContext, tempDir } from "./helpers.js";

/** What the next Handle returns, by execution id: each test scripts its own. */
const handleResults = new Map<string, () => HandleResult>();
const seenStates: Array<PluginState | undefined> = [];
const finalizeRuns: string[] = [];
let releaseFinalize: () => void = () => undefined;
let finalizeFails = false;

const plugin = defineCorePlugin({
  name: "core-checks",
  version: "0.0.1",
  taskTypes: [{ type: "core-checks", version: 1 }],
  specification: FileSensorSchema,
  handle(ctx, state) {
    seenStates.push(state);
    const result = handleResults.get(ctx.executionId);
    if (!result) throw new Error(`nothing scripted for ${ctx.executionId}`);
    return result();
  },
  abort(_ctx, _state, reason) {
    throw new PluginError(GrpcStatus.FAILED_PRECONDITION, `cannot abort: ${reason}`);
  },
  async finalize(ctx) {
    finalizeRuns.push(`${ctx.executionId} ${ctx.attempt}`);
    // Held until the test releases it, so duplicates arrive while the first run is in flight.
    await new Promise<void>((resolve) => (releaseFinalize = resolve));
    if (finalizeFails) throw new Error("release failed");
  },
});

describe("core service checks", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let served: ServeHandle;
  let core: PromiseClient<MethodsOf<typeof CorePluginService>>;
  const context = (execution: string) => taskContext(execution, {}, { type: "core-checks" });
  // The kit logs to this process's stderr; the log shows when a duplicate joined the run in flight.
  const stderr = vi.spyOn(process.stderr, "write");
  const logged = (text: string) => stderr.mock.calls.filter(([chunk]) => String(chunk).includes(text)).length;

  beforeAll(async () => {
    dir = await tempDir("core-checks");
    served = await serve(plugin, {
      natsUrl: false,
      endpoint: `unix:${path.join(dir.path, "core.sock")}`,
      instanceId: "core-checks-a",
      handleSignals: false,
    });
    core = createGrpcClient(CorePluginService, served.endpoint, credentials.createInsecure());
  });

  afterAll(async () => {
    core?.close();
    await served?.stop();
    await dir?.remove();
    stderr.mockRestore();
  });

  it("passes the state in, sends a new one back, and leaves an unset one unset", async () => {
    handleResults.set("state-1", () => ({ ...phaseRunning("going"), state: { version: 7, data: new Uint8Array([0, 255]) } }));
    const first = await core.handle({ context: context("state-1") });
    expect(seenStates.at(-1)).toBeUndefined();
    // Bytes are compared as plain arrays: received data is a Buffer, sent data a Uint8Array.
    expect(first.state?.version).toBe(7);
    expect([...first.state!.data]).toEqual([0, 255]);

    handleResults.set("state-1", () => phaseSuccess({ done: true }));
    const second = await core.handle({ context: context("state-1"), state: first.state });
    expect(seenStates.at(-1)?.version).toBe(7);
    expect([...seenStates.at(-1)!.data]).toEqual([0, 255]);
    expect(second.state).toBeUndefined();
    expect(second.outputs).toEqual({ done: true });
  });

  it("answers INTERNAL for a Handle result without a phase, with PHASE_UNSPECIFIED, or with bad outputs or state", async () => {
    const cases: Array<[string, () => HandleResult, string]> = [
      ["no-phase", () => ({}) as HandleResult, "handle returned no phaseInfo"],
      ["unspecified", () => ({ phaseInfo: { phase: Phase.UNSPECIFIED } }), "PHASE_UNSPECIFIED"],
      ["outputs", () => ({ ...phaseSuccess(), outputs: [1, 2] as never }), "outputs must be a JSON object"],
      ["state-version", () => ({ ...phaseRunning(), state: { version: -1, data: new Uint8Array() } }), "state"],
      ["state-data", () => ({ ...phaseRunning(), state: { version: 1, data: "text" as never } }), "state"],
      ["thrown", () => { throw new Error("plain failure"); }, "plain failure"],
    ];
    for (const [execution, result, message] of cases) {
      handleResults.set(execution, result);
      const error = await grpcError(core.handle({ context: context(execution) }));
      expect(error.code, execution).toBe(status.INTERNAL);
      expect(error.details, execution).toContain(message);
    }
  });

  it("answers an Abort's PluginError with its code", async () => {
    const error = await grpcError(core.abort({ context: context("abort-1"), reason: "timeout" }));
    expect(error).toMatchObject({ code: status.FAILED_PRECONDITION, details: "cannot abort: timeout" });
  });

  it("shares one Finalize among concurrent duplicates and remembers it once it succeeded", async () => {
    finalizeFails = false;
    const calls = [1, 2, 3].map(() => core.finalize({ context: context("final-1") }));
    await eventually("the first Finalize to run", () => (finalizeRuns.includes("final-1 1") ? true : undefined), 200, 10);
    await eventually("both duplicates to join it", () => (logged("joining a Finalize already in progress") === 2 ? true : undefined), 200, 10);
    releaseFinalize();
    await Promise.all(calls);
    await core.finalize({ context: context("final-1") });
    expect(finalizeRuns.filter((run) => run === "final-1 1")).toHaveLength(1);
  });

  it("runs a failed Finalize again for its retry", async () => {
    finalizeFails = true;
    const failing = core.finalize({ context: context("final-2") });
    await eventually("the Finalize to run", () => (finalizeRuns.includes("final-2 1") ? true : undefined), 200, 10);
    releaseFinalize();
    expect(await grpcError(failing)).toMatchObject({ code: status.INTERNAL, details: "release failed" });

    finalizeFails = false;
    const retry = core.finalize({ context: context("final-2") });
    await eventually("the retry to run", () => (finalizeRuns.filter((run) => run === "final-2 1").length === 2 ? true : undefined), 200, 10);
    releaseFinalize();
    await retry;
  });
});

