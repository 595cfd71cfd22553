import { create, type JsonObject } from "@bufbuild/protobuf";
import { encode as encodeMessagePack } from "@msgpack/msgpack";
import { LiteralSchema, type Literal } from "@plugin-bridge/protocol/flyteidl/core/literals_pb.js";
import { LiteralTypeSchema, SimpleType, type LiteralType } from "@plugin-bridge/protocol/flyteidl/core/types_pb.js";
import { describe, expect, it } from "vitest";
import { jsonToLiteral, jsonToLiteralMap, literalMapToJson, literalToJson, literalTypeOf, simpleType } from "./literals.js";

const collectionOf = (type: LiteralType): LiteralType => create(LiteralTypeSchema, { type: { case: "collectionType", value: type } });
const mapOf = (type: LiteralType): LiteralType => create(LiteralTypeSchema, { type: { case: "mapValueType", value: type } });
const unionOf = (...variants: LiteralType[]): LiteralType => create(LiteralTypeSchema, { type: { case: "unionType", value: { variants } } });
const scalar = (value: object): Literal => create(LiteralSchema, { value: { case: "scalar", value: { value: value as never } } });

describe("JSON to literals and back", () => {
  it("round-trips primitives, none, collections, maps and generic structs", () => {
    const values: JsonObject = { s: "text", i: 42, f: 2.5, b: true, n: null, list: [1, 2, 3], nested: [[1.5], [2.5]], obj: { a: { b: [true] } } };
    const map = jsonToLiteralMap(values, {}, "inputs");
    expect(map.literals.i?.value).toMatchObject({ case: "scalar", value: { value: { case: "primitive", value: { value: { case: "integer", value: 42n } } } } });
    expect(map.literals.f?.value).toMatchObject({ case: "scalar", value: { value: { case: "primitive", value: { value: { case: "floatValue", value: 2.5 } } } } });
    expect(map.literals.obj?.value).toMatchObject({ case: "scalar", value: { value: { case: "generic" } } });
    expect(literalMapToJson(map, "inputs")).toEqual(values);
  });

  it("lets the interface decide: 3 as a float, strings as times and durations, objects as maps, unions", () => {
    expect(jsonToLiteral(3, simpleType(SimpleType.FLOAT), "x").value).toMatchObject({ case: "scalar", value: { value: { case: "primitive", value: { value: { case: "floatValue", value: 3 } } } } });
    const when = jsonToLiteral("2026-11-26T12:00:00.5Z", simpleType(SimpleType.DATETIME), "x");
    expect(literalToJson(when, "x")).toBe("2026-11-26T12:00:00.500Z");
    expect(literalToJson(jsonToLiteral("1.5s", simpleType(SimpleType.DURATION), "x"), "x")).toBe("1.500s");
    const tags = jsonToLiteral({ a: "1", b: "2" }, mapOf(simpleType(SimpleType.STRING)), "x");
    expect(tags.value.case).toBe("map");
    expect(literalToJson(tags, "x")).toEqual({ a: "1", b: "2" });
    const optional = unionOf(simpleType(SimpleType.INTEGER), simpleType(SimpleType.NONE));
    expect(jsonToLiteral(null, optional, "x").value).toMatchObject({ case: "scalar", value: { value: { case: "union" } } });
    expect(literalToJson(jsonToLiteral(7, optional, "x"), "x")).toBe(7);
    expect(literalToJson(jsonToLiteral([1, 2], collectionOf(simpleType(SimpleType.FLOAT)), "x"), "x")).toEqual([1, 2]);
  });

  it("refuses what does not fit the interface, naming the path", () => {
    expect(() => jsonToLiteral(2.5, simpleType(SimpleType.INTEGER), "inputs.n")).toThrow("inputs.n: 2.5 is not an integer, as the interface types it");
    expect(() => jsonToLiteral(["a", 1], collectionOf(simpleType(SimpleType.STRING)), "inputs.l")).toThrow("inputs.l[1]: 1 is not a string");
    expect(() => jsonToLiteral("yesterday", simpleType(SimpleType.DATETIME), "inputs.t")).toThrow("is not an RFC 3339 time");
    expect(() => jsonToLiteral("x", unionOf(simpleType(SimpleType.INTEGER)), "inputs.u")).toThrow("matches none of the union's 1 types");
    expect(() => jsonToLiteral({}, simpleType(SimpleType.BINARY), "inputs.b")).toThrow("the interface types it as BINARY, which the bridge does not map");
    expect(() => literalTypeOf(["a", 1])).toThrow("a list of mixed values needs a type from the task's interface");
  });
});

describe("literals to JSON", () => {
  it("reads flytekit's MessagePack binaries (dicts and dataclasses) as JSON", () => {
    const binary = scalar({ case: "binary", value: { tag: "msgpack", value: encodeMessagePack({ name: "x", sizes: [1, 2], nested: { ok: true } }) } });
    expect(literalToJson(binary, "outputs.o")).toEqual({ name: "x", sizes: [1, 2], nested: { ok: true } });
    const bytes = scalar({ case: "binary", value: { tag: "msgpack", value: encodeMessagePack({ raw: new Uint8Array([1]) }) } });
    expect(() => literalToJson(bytes, "outputs.o")).toThrow("outputs.o.raw: MessagePack bytes or extension values have no JSON form");
    expect(() => literalToJson(scalar({ case: "binary", value: { tag: "pickle", value: new Uint8Array([1]) } }), "o")).toThrow('a binary literal tagged "pickle" is not supported');
  });

  it("refuses literals with no JSON form, naming the kind", () => {
    expect(() => literalToJson(scalar({ case: "blob", value: { uri: "s3://b/k" } }), "inputs.data")).toThrow("inputs.data: a blob literal is not supported");
    expect(() => literalToJson(scalar({ case: "structuredDataset", value: { uri: "s3://b/d" } }), "inputs.df")).toThrow("a structured dataset literal is not supported");
    expect(() => literalToJson(create(LiteralSchema, { value: { case: "offloadedMetadata", value: { uri: "s3://b/o" } } }), "x")).toThrow("an offloaded literal");
    const huge = scalar({ case: "primitive", value: { value: { case: "integer", value: 2n ** 60n } } });
    expect(() => literalToJson(huge, "x")).toThrow("does not fit a JSON number exactly");
    const nan = scalar({ case: "primitive", value: { value: { case: "floatValue", value: Number.NaN } } });
    expect(() => literalToJson(nan, "x")).toThrow("NaN is not a number JSON can hold");
  });

  it("refuses nesting deeper than 100 levels instead of following it", () => {
    let literal = scalar({ case: "noneType", value: {} });
    for (let depth = 0; depth < 150; depth++) literal = create(LiteralSchema, { value: { case: "collection", value: { literals: [literal] } } });
    expect(() => literalToJson(literal, "x")).toThrow("nests deeper than 100 levels");
  });
});
