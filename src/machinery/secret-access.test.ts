import { describe, expect, it } from "vitest";
import { SecretAccess, SecretAccessError } from "./secret-access.js";

describe("SecretAccess", () => {
  it("allows what a rule names, with * for a whole plugin, group or key", () => {
    const access = SecretAccess.parse(" sql=db/password, db/user ; http=api/* ; *=shared/ca ");
    expect(access.allows("sql", "db", "password")).toBe(true);
    expect(access.allows("sql", "db", "admin")).toBe(false);
    expect(access.allows("http", "api", "anything")).toBe(true);
    expect(access.allows("http", "db", "password")).toBe(false);
    expect(access.allows("batch", "shared", "ca")).toBe(true);
    expect(access.allows("batch", "shared", "key")).toBe(false);
  });

  it("allows nothing without rules", () => {
    const access = SecretAccess.parse("");
    expect(access.empty).toBe(true);
    expect(access.allows("sql", "db", "password")).toBe(false);
  });

  it("refuses rules it cannot read, naming the rule", () => {
    expect(() => SecretAccess.parse("sql")).toThrow(new SecretAccessError('rule 1 ("sql") has no "=": write <plugin>=<group>/<key>,…'));
    expect(() => SecretAccess.parse("sql=db")).toThrow(/rule 1: "db" is not <group>\/<key>/);
    expect(() => SecretAccess.parse("a=b/c;sql=db/../etc")).toThrow(/rule 2/);
    expect(() => SecretAccess.parse("a b=x/y")).toThrow(/"a b" is not a plugin name/);
    expect(() => SecretAccess.parse("sql=db/p*")).toThrow(/is not <group>\/<key>/);
  });
});
