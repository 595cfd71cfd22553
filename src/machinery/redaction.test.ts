import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { PhaseInfoSchema, Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { MIN_REDACTED_LENGTH, Redactor } from "./redaction.js";

describe("Redactor", () => {
  const redactor = Redactor.of({ "db/password": "hunter22", "db/prefix": "hunter22-admin", "x/short": "abc" });

  it("replaces every value by its name, a longer value whole before a shorter one inside it", () => {
    expect(redactor.text("pw hunter22, admin hunter22-admin")).toBe("pw [secret db/password], admin [secret db/prefix]");
  });

  it("leaves values shorter than the minimum alone", () => {
    expect("abc".length).toBeLessThan(MIN_REDACTED_LENGTH);
    expect(redactor.text("abc")).toBe("abc");
  });

  it("walks JSON: strings, keys, arrays and nested objects", () => {
    expect(redactor.json({ hunter22: ["x hunter22", { deep: "hunter22" }], n: 1, b: true, z: null })).toEqual({
      "[secret db/password]": ["x [secret db/password]", { deep: "[secret db/password]" }],
      n: 1,
      b: true,
      z: null,
    });
  });

  it("covers a phase's reason, error, logs and custom info", () => {
    const info = create(PhaseInfoSchema, {
      phase: Phase.PERMANENT_FAILURE,
      reason: "hunter22",
      error: { code: "C", message: "bad hunter22" },
      logs: [{ uri: "https://x/?token=hunter22", name: "log" }],
      customInfo: { token: "hunter22" },
    });
    const out = redactor.phaseInfo(info)!;
    expect([out.reason, out.error?.message, out.logs[0]?.uri, out.customInfo?.token]).toEqual([
      "[secret db/password]",
      "bad [secret db/password]",
      "https://x/?token=[secret db/password]",
      "[secret db/password]",
    ]);
    expect(out.phase).toBe(Phase.PERMANENT_FAILURE);
  });
});
