import { describe, expect, it } from "vitest";
import { HttpRequestSchema } from "@plugin-bridge/protocol/pluginbridge/plugins/http/v1/http_pb.js";
import { FileSensorSchema } from "@plugin-bridge/protocol/pluginbridge/plugins/sensor/v1/sensor_pb.js";
import { customProblem } from "../src/sdk/custom-problem.js";

describe("customProblem", () => {
  it("accepts custom that parses", () => {
    expect(customProblem(FileSensorSchema, { path: "/tmp/x", deadline: "3s" })).toBeUndefined();
    expect(customProblem(FileSensorSchema, undefined)).toBeUndefined();
  });

  it("names the field whose value does not parse, even inside a well-known type", () => {
    expect(customProblem(FileSensorSchema, { path: "/tmp/x", deadline: "soon" })).toMatch(/^template\.custom\.deadline: /);
  });

  it("names an unknown field", () => {
    expect(customProblem(FileSensorSchema, { pathh: "/x" })).toBe(
      'template.custom.pathh: pluginbridge.plugins.sensor.v1.FileSensor has no field "pathh"',
    );
  });

  it("names map entries and list items by their key and index", () => {
    expect(customProblem(HttpRequestSchema, { headers: { accept: 5 } })).toMatch(/^template\.custom\.headers: /);
    expect(customProblem(HttpRequestSchema, { successStatuses: [200, "ok"] })).toMatch(/^template\.custom\.successStatuses: /);
  });
});
