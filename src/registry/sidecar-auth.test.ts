// Which announcements count, signed by the TypeScript kit's own code (the counterpart every kit matches).
import { create } from "@bufbuild/protobuf";
import { announcement, SidecarToken } from "@plugin-bridge/kit";
import { PluginInstanceSchema, PluginKind, type PluginInstance } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { describe, expect, it } from "vitest";
import { SidecarAuth } from "./sidecar-auth.js";

const SECRET = Buffer.from("a-cluster-secret-of-at-least-32-bytes!!");
const auth = new SidecarAuth(SECRET, () => new Set(["supervised"]), [
  { name: "sql-remote", plugins: ["sql"], taskTypes: ["sql_query"] },
  { name: "anything", plugins: ["*"], taskTypes: ["*"] },
]);

function instance(plugin: string, ...types: string[]): PluginInstance {
  return create(PluginInstanceSchema, {
    instanceId: `${plugin}-1`,
    endpoint: "127.0.0.1:9",
    descriptor: { name: plugin, version: "1.0.0", kind: PluginKind.ASYNC, taskTypes: types.map((type) => ({ type, version: 1 })) },
  });
}

const signedBy = (keyId: string, of: PluginInstance, token = auth.tokenFor(keyId)) => announcement(of, new SidecarToken(keyId, token));
const refusal = (result: ReturnType<SidecarAuth["admit"]>): string => ("refused" in result ? result.refused : "admitted");

describe("SidecarAuth.admit", () => {
  it("admits what a key is allowed: its plugins and their task types, or anything for a supervised sidecar", () => {
    expect(refusal(auth.admit(signedBy("sql-remote", instance("sql", "sql_query"))))).toBe("admitted");
    expect(refusal(auth.admit(signedBy("anything", instance("x", "y", "z"))))).toBe("admitted");
    expect(refusal(auth.admit(signedBy("supervised", instance("whatever", "other"))))).toBe("admitted");
  });

  it("refuses a plugin the key may not announce", () => {
    expect(refusal(auth.admit(signedBy("sql-remote", instance("spark", "sql_query"))))).toBe('key "sql-remote" may not announce plugin "spark"');
  });

  it("refuses another plugin's task type announced under the key's own plugin name", () => {
    // Tasks are routed by type: the plugin name alone would let this key take "spark" tasks and their secrets.
    expect(refusal(auth.admit(signedBy("sql-remote", instance("sql", "sql_query", "spark"))))).toBe('key "sql-remote" may not announce task type "spark"');
  });

  it("refuses unsigned, forged and unknown-key announcements", () => {
    expect(refusal(auth.admit(announcement(instance("sql", "sql_query"), undefined)))).toBe("not signed (the hosts require sidecar tokens)");
    expect(refusal(auth.admit(signedBy("sql-remote", instance("sql", "sql_query"), "0".repeat(64))))).toBe('signature does not hold for key "sql-remote"');
    expect(refusal(auth.admit(signedBy("stranger", instance("sql", "sql_query"))))).toBe('key "stranger" may not announce plugin "sql"');
  });

  it("admits everything, signed or not, when no secret is configured", () => {
    const open = new SidecarAuth(undefined, () => new Set());
    expect(refusal(open.admit(announcement(instance("spark", "spark"), undefined)))).toBe("admitted");
  });
});
