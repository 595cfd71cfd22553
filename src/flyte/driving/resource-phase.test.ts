import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { AgentError_Kind, ResourceSchema, State, type Resource } from "@plugin-bridge/protocol/flyteidl/admin/agent_pb.js";
import { ExecutionError_ErrorKind, TaskExecution_Phase } from "@plugin-bridge/protocol/flyteidl/core/execution_pb.js";
import { LiteralSchema } from "@plugin-bridge/protocol/flyteidl/core/literals_pb.js";
import { ErrorKind, Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { describe, expect, it } from "vitest";
import { jsonToLiteralMap } from "../literals.js";
import { reportedPhase, UnknownPhaseError } from "./resource-phase.js";

const resource = (fields: MessageInitShape<typeof ResourceSchema>): Resource => create(ResourceSchema, fields);

describe("a connector's Resource as the bridge's phase", () => {
  it("maps every Flyte phase, keeping the message, logs and custom info", () => {
    const phases: Array<[TaskExecution_Phase, Phase]> = [
      [TaskExecution_Phase.QUEUED, Phase.QUEUED],
      [TaskExecution_Phase.WAITING_FOR_RESOURCES, Phase.WAITING_FOR_RESOURCES],
      [TaskExecution_Phase.INITIALIZING, Phase.INITIALIZING],
      [TaskExecution_Phase.RUNNING, Phase.RUNNING],
      [TaskExecution_Phase.SUCCEEDED, Phase.SUCCESS],
      [TaskExecution_Phase.FAILED, Phase.PERMANENT_FAILURE],
      [TaskExecution_Phase.RETRYABLE_FAILED, Phase.RETRYABLE_FAILURE],
      [TaskExecution_Phase.ABORTED, Phase.ABORTED],
    ];
    for (const [flyte, bridge] of phases) expect(reportedPhase(resource({ phase: flyte, message: "m" })).phaseInfo).toMatchObject({ phase: bridge, reason: "m" });
    const running = reportedPhase(resource({ phase: TaskExecution_Phase.RUNNING, logLinks: [{ uri: "https://logs/1", name: "job" }], customInfo: { job: 7 } }));
    expect(running.phaseInfo.logs).toMatchObject([{ uri: "https://logs/1", name: "job" }]);
    expect(running.phaseInfo.customInfo).toEqual({ job: 7 });
  });

  it("reads the deprecated state when no phase is given, its zero value (RETRYABLE_FAILURE) included, as Flyte does", () => {
    expect(reportedPhase(resource({ state: State.PENDING })).phaseInfo.phase).toBe(Phase.INITIALIZING);
    expect(reportedPhase(resource({ state: State.RUNNING })).phaseInfo.phase).toBe(Phase.RUNNING);
    expect(reportedPhase(resource({ state: State.SUCCEEDED })).phaseInfo.phase).toBe(Phase.SUCCESS);
    expect(reportedPhase(resource({ state: State.PERMANENT_FAILURE })).phaseInfo.phase).toBe(Phase.PERMANENT_FAILURE);
    expect(reportedPhase(resource({})).phaseInfo).toMatchObject({ phase: Phase.RETRYABLE_FAILURE, reason: "the connector reported state RETRYABLE_FAILURE (or no phase at all)" });
    expect(() => reportedPhase(resource({ phase: 42 as TaskExecution_Phase }))).toThrow(UnknownPhaseError);
  });

  it("describes failures with the agent error's code, whose fault it was (the task's unless it says the system's) and whether a retry helps", () => {
    expect(reportedPhase(resource({ phase: TaskExecution_Phase.FAILED, message: "no such table" })).phaseInfo.error).toMatchObject({ code: "TaskFailedWithError", message: "no such table", kind: ErrorKind.USER });
    const recoverable = reportedPhase(resource({ phase: TaskExecution_Phase.FAILED, message: "throttled", agentError: { code: "Throttled", kind: AgentError_Kind.RECOVERABLE, origin: ExecutionError_ErrorKind.SYSTEM } }));
    expect(recoverable.phaseInfo).toMatchObject({ phase: Phase.RETRYABLE_FAILURE, error: { code: "Throttled", kind: ErrorKind.SYSTEM } });
  });

  it("gives the outputs as JSON on success, and fails the attempt naming a literal JSON cannot carry", () => {
    const outputs = jsonToLiteralMap({ n: 3, names: ["a"] }, {}, "outputs");
    expect(reportedPhase(resource({ phase: TaskExecution_Phase.SUCCEEDED, outputs })).outputs).toEqual({ n: 3, names: ["a"] });
    outputs.literals.file = create(LiteralSchema, { value: { case: "scalar", value: { value: { case: "blob", value: { uri: "s3://b/k" } } } } });
    const refused = reportedPhase(resource({ phase: TaskExecution_Phase.SUCCEEDED, outputs }));
    expect(refused.outputs).toBeUndefined();
    expect(refused.phaseInfo).toMatchObject({ phase: Phase.PERMANENT_FAILURE, error: { code: "UnsupportedOutput", kind: ErrorKind.USER } });
    expect(refused.phaseInfo.reason).toMatch(/^outputs\.file: a blob literal is not supported/);
  });
});
