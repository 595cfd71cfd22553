import { describe, expect, it } from "vitest";
import { connectorMessage } from "./connector-message.js";

describe("a connector's error message as the bridge keeps it", () => {
  it("replaces flytekit's traceback with the exception's line", () => {
    const details = 'failed to create bq task with error:\n Trace:\n\n    Traceback (most recent call last):\n      File "x.py", line 1, in create\n        raise RuntimeError("no")\n    RuntimeError: the dataset\n      is gone\n\nMessage:\n\n    RuntimeError: the dataset\n      is gone.';
    expect(connectorMessage(details)).toBe("failed to create bq task with error: RuntimeError: the dataset is gone. (Python traceback cut)");
  });

  it("takes a traceback's last line when there is no Message section, and leaves short messages alone", () => {
    expect(connectorMessage("oops:\nTraceback (most recent call last):\n  File \"y\"\nValueError: bad\n")).toBe("oops: ValueError: bad (Python traceback cut)");
    expect(connectorMessage("Cannot find connector for task type: nope.")).toBe("Cannot find connector for task type: nope.");
  });

  it("cuts what is still too long", () => {
    const cut = connectorMessage("x".repeat(5_000));
    expect(cut).toHaveLength(1_000 + "… (cut from 5000 characters)".length);
    expect(cut.endsWith("… (cut from 5000 characters)")).toBe(true);
  });
});
