import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ExecutionRecordSchema } from "@plugin-bridge/protocol/pluginbridge/v1/coordination_pb.js";
import { PluginStateSchema } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { ErrorKind, Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { failure, phaseInfo } from "./phases.js";
import {
  abortStopFailed,
  applyPendingEnd,
  awaitFinalize,
  countSystemFailure,
  enterPhase,
  failAttempt,
  finalizeFailed,
} from "./transitions.js";

const running = (retries = 0) =>
  create(ExecutionRecordSchema, {
    id: "e1",
    attempt: 1,
    template: { type: "t", metadata: { retries } },
    metadata: { namespace: "ns" },
    phaseInfo: phaseInfo(Phase.RUNNING, "running"),
    resourceCreated: true,
    resourceMeta: new Uint8Array([1]),
    lastEventSequence: 3n,
    abortReason: "stop",
  });

describe("transitions", () => {
  it("enterPhase raises the sequence by one and makes one event", () => {
    const { record, events } = enterPhase(running(), phaseInfo(Phase.SUCCESS, ""));
    expect(record.lastEventSequence).toBe(4n);
    expect(events.map((e) => [e.sequence, e.phaseInfo?.phase, e.namespace])).toEqual([[4n, Phase.SUCCESS, "ns"]]);
  });

  it("a retryable failure with retries left starts attempt 2 with a fresh resource", () => {
    const { record, events } = failAttempt(running(1), failure(Phase.RETRYABLE_FAILURE, "X", "flaky", ErrorKind.SYSTEM));
    expect(events.map((e) => e.phaseInfo?.phase)).toEqual([Phase.RETRYABLE_FAILURE, Phase.QUEUED]);
    expect(events.map((e) => e.attempt)).toEqual([1, 2]);
    expect(record).toMatchObject({ attempt: 2, resourceCreated: false, systemFailures: 0, lastEventSequence: 5n });
    expect(record.resourceMeta.length).toBe(0);
  });

  it("a retryable failure without retries ends the execution as a permanent failure, keeping the error", () => {
    const { record } = failAttempt(running(0), failure(Phase.RETRYABLE_FAILURE, "X", "flaky", ErrorKind.SYSTEM));
    expect(record.phaseInfo?.phase).toBe(Phase.PERMANENT_FAILURE);
    expect(record.phaseInfo?.error?.code).toBe("X");
    expect(record.phaseInfo?.reason).toContain("no retries left after 1 attempt");
  });

  it("system failures are counted with their message until the budget is spent", () => {
    let record = running();
    for (let n = 1; n <= 2; n++) {
      record = countSystemFailure(record, "boom", 2).record;
      expect(record.phaseInfo?.phase).toBe(Phase.RUNNING);
      expect(record.phaseInfo?.reason).toBe(`system failure ${n} of 2 allowed: boom`);
    }
    const spent = countSystemFailure(record, "boom", 2).record;
    expect(spent.phaseInfo?.phase).toBe(Phase.PERMANENT_FAILURE);
    expect(spent.phaseInfo?.error).toMatchObject({ code: "SystemFailure", message: "3 system failures, the last: boom", kind: ErrorKind.SYSTEM });
  });

  it("a failing abort Delete stays pending while the budget lasts, then ends ABORTED with the failure", () => {
    const pending = abortStopFailed(running(3), "Delete", "unreachable", 1).record;
    expect(pending.phaseInfo?.phase).toBe(Phase.RUNNING);
    expect(pending.phaseInfo?.reason).toContain("abort pending");
    const ended = abortStopFailed(pending, "Delete", "unreachable", 1).record;
    expect(ended.phaseInfo?.phase).toBe(Phase.ABORTED);
    expect(ended.attempt).toBe(1);
    expect(ended.phaseInfo?.reason).toBe("stop; Delete failed 2 times, the last: unreachable");
  });

  describe("a core attempt's end", () => {
    const handled = (retries = 0) =>
      create(ExecutionRecordSchema, { ...running(retries), pluginState: create(PluginStateSchema, { version: 1, data: new Uint8Array([7]) }) });

    it("waits for Finalize: recorded, no event, the phase unchanged", () => {
      const { record, events } = awaitFinalize(handled(), phaseInfo(Phase.SUCCESS, "done"), { answer: 42 });
      expect(events).toEqual([]);
      expect(record.phaseInfo?.phase).toBe(Phase.RUNNING);
      expect(record.pendingEnd?.phase).toBe(Phase.SUCCESS);
      expect(record.pendingOutputs).toEqual({ answer: 42 });
      expect(record.lastEventSequence).toBe(3n);
    });

    it("is applied after Finalize: success with the outputs kept for it", () => {
      const ending = awaitFinalize(handled(), phaseInfo(Phase.SUCCESS, "done"), { answer: 42 }).record;
      const { record, events } = applyPendingEnd(ending);
      expect(events.map((e) => e.phaseInfo?.phase)).toEqual([Phase.SUCCESS]);
      expect(record.outputs).toEqual({ answer: 42 });
      expect(record.pendingEnd).toBeUndefined();
      expect(record.pendingOutputs).toBeUndefined();
    });

    it("a retryable end starts the next attempt without the plugin state", () => {
      const ending = awaitFinalize(handled(1), failure(Phase.RETRYABLE_FAILURE, "X", "flaky", ErrorKind.SYSTEM)).record;
      const { record, events } = applyPendingEnd(ending);
      expect(events.map((e) => e.phaseInfo?.phase)).toEqual([Phase.RETRYABLE_FAILURE, Phase.QUEUED]);
      expect(record).toMatchObject({ attempt: 2, resourceCreated: false });
      expect(record.pluginState).toBeUndefined();
      expect(record.pendingEnd).toBeUndefined();
    });

    it("a failing Finalize is counted, then the end is applied with the failure noted", () => {
      let record = awaitFinalize(handled(), phaseInfo(Phase.ABORTED, "stop")).record;
      record = finalizeFailed(record, "unreachable", 1).record;
      expect(record.phaseInfo?.phase).toBe(Phase.RUNNING);
      expect(record.phaseInfo?.reason).toBe("ending: Finalize failed (1 of 1 allowed): unreachable");
      expect(record.pendingEnd?.phase).toBe(Phase.ABORTED);
      const ended = finalizeFailed(record, "unreachable", 1).record;
      expect(ended.phaseInfo?.phase).toBe(Phase.ABORTED);
      expect(ended.phaseInfo?.reason).toBe("stop (Finalize failed 2 times, the last: unreachable)");
      expect(ended.pendingEnd).toBeUndefined();
    });
  });
});
