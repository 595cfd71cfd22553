import { create, type JsonObject, type MessageInitShape } from "@bufbuild/protobuf";
import { SimpleType } from "@plugin-bridge/protocol/flyteidl/core/types_pb.js";
import { TaskContextSchema, VariableType, type TaskContext, type TypedInterfaceSchema } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { describe, expect, it } from "vitest";
import { LiteralError } from "../literals.js";
import { flyteTask } from "./task-request.js";

/** What a test changes in the template. */
interface TemplateInit {
  interface?: MessageInitShape<typeof TypedInterfaceSchema>;
  secrets?: Array<{ group: string; key: string }>;
}

const context = (fields: { inputs?: JsonObject; secrets?: Record<string, string>; template?: TemplateInit } = {}): TaskContext =>
  create(TaskContextSchema, {
    executionId: { id: "exec-1", attempt: 2 },
    template: { type: "bigquery", typeVersion: 1, custom: { query: "select 1" }, metadata: { retries: 3, interruptible: true }, ...fields.template },
    metadata: { namespace: "team-a", labels: { app: "x" }, annotations: { note: "y" }, environment: { MODE: "test" }, owner: "alice" },
    ...(fields.inputs && { inputs: fields.inputs }),
    ...(fields.secrets && { secrets: fields.secrets }),
  });

describe("a bridge call as a Flyte CreateTask", () => {
  it("fills the template, its interface from the declaration or the values, and Flyte's execution metadata", () => {
    const task = flyteTask(context({
      inputs: { limit: 3, ratio: 2, names: ["a", "b"], extra: true },
      template: {
        interface: { inputs: { ratio: { type: VariableType.FLOAT, description: "how much" }, names: { type: VariableType.LIST } }, outputs: { rows: { type: VariableType.LIST } } },
      },
    }), "s3://bucket/runs/");
    const simple = (name: string) => task.template.interface?.inputs?.variables[name]?.type?.type;
    expect(simple("ratio")).toEqual({ case: "simple", value: SimpleType.FLOAT });
    expect(simple("limit")).toEqual({ case: "simple", value: SimpleType.INTEGER });
    expect(simple("extra")).toEqual({ case: "simple", value: SimpleType.BOOLEAN });
    expect(simple("names")).toMatchObject({ case: "collectionType", value: { type: { case: "simple", value: SimpleType.STRING } } });
    expect(task.template.interface?.inputs?.variables.ratio?.description).toBe("how much");
    expect(task.template.interface?.outputs?.variables.rows?.type?.type).toMatchObject({ case: "collectionType" });
    // The declared FLOAT makes 2 a float literal, as Flyte's TypeEngine will read it.
    expect(task.inputs.literals.ratio?.value).toMatchObject({ case: "scalar", value: { value: { case: "primitive", value: { value: { case: "floatValue", value: 2 } } } } });
    expect(task.template).toMatchObject({ type: "bigquery", taskTypeVersion: 1, custom: { query: "select 1" }, id: { project: "team-a", domain: "team-a", name: "bigquery", version: "1" } });
    expect(task.template.metadata).toMatchObject({ retries: { retries: 3 }, interruptibleValue: { case: "interruptible", value: true } });
    expect(task.outputPrefix).toBe("s3://bucket/runs/exec-1/2");
    expect(task.taskExecutionMetadata).toMatchObject({
      namespace: "team-a",
      labels: { app: "x" },
      annotations: { note: "y" },
      environmentVariables: { MODE: "test" },
      maxAttempts: 4,
      interruptible: true,
      identity: { executionIdentity: "alice" },
      taskExecutionId: { retryAttempt: 1, nodeExecutionId: { nodeId: "n0", executionId: { project: "team-a", domain: "team-a", name: "exec-1" } } },
    });
  });

  it("passes secret references, never values, and no output prefix when none is configured", () => {
    const task = flyteTask(context({ secrets: { "db/password": "hunter2" }, template: { secrets: [{ group: "db", key: "password" }] } }), "");
    expect(task.template.securityContext?.secrets).toMatchObject([{ group: "db", key: "password" }]);
    expect(JSON.stringify(task, (_, value: unknown) => (typeof value === "bigint" ? String(value) : value))).not.toContain("hunter2");
    expect(task.outputPrefix).toBe("");
  });

  it("refuses inputs that have no literal, naming them", () => {
    expect(() => flyteTask(context({ inputs: { numbers: [] } }), "")).toThrow(new LiteralError("inputs.numbers: a list of nothing needs a type from the task's interface"));
    const declared = context({ inputs: { n: 1.5 }, template: { interface: { inputs: { n: { type: VariableType.INTEGER } } } } });
    expect(() => flyteTask(declared, "")).toThrow(/^inputs\.n: 1\.5 is not an integer/);
  });
});
