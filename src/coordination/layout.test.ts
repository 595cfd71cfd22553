// The plugins bucket is created by whoever comes first, a host or a sidecar kit, and opened as it is by the
// other: the two sides must agree on its name and settings.
import { describe, expect, it } from "vitest";
import { PLUGINS_BUCKET as KIT_PLUGINS_BUCKET, PLUGINS_BUCKET_OPTIONS as KIT_OPTIONS } from "@plugin-bridge/kit";
import { PLUGINS_BUCKET_OPTIONS } from "./layout.js";
import { PLUGINS_BUCKET } from "./names.js";

describe("the plugins bucket", () => {
  it("has the same name and settings in the host and in the TypeScript kit", () => {
    expect(KIT_PLUGINS_BUCKET).toBe(PLUGINS_BUCKET);
    expect(KIT_OPTIONS).toEqual(PLUGINS_BUCKET_OPTIONS);
  });
});
