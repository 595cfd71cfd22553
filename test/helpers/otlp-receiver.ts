// The OTLP trace receiver of the tests (otlp_receiver.py beside this file) as a process: where exporters send
// spans, and what it received. Used by the host's trace tests and the TypeScript kit's.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { projectRoot, run } from "./processes.js";

/** A span as the receiver writes it: ids in hex, kind and status code as OTLP numbers. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** 1 internal, 2 server, 3 client. */
  kind: number;
  /** The resource's service.name. */
  service: string;
  attributes: Record<string, unknown>;
  /** 0 unset, 1 ok, 2 error. */
  status: { code: number; message: string };
}

export interface OtlpReceiver {
  /** OTEL_EXPORTER_OTLP_ENDPOINT for an exporter that should send here. */
  readonly endpoint: string;
  readonly port: number;
  /** Every span received so far. */
  spans(): ReceivedSpan[];
  stop(): Promise<void>;
}

/** Starts the receiver writing to `spansFile`; resolves once it listens. */
export async function startOtlpReceiver(spansFile: string): Promise<OtlpReceiver> {
  const python = path.join(projectRoot, ".tools", "venv", "bin", "python");
  const receiver = run(python, [path.join(projectRoot, "test", "helpers", "otlp_receiver.py"), spansFile]);
  try {
    await receiver.waitFor(/listening \d+/, 30_000);
  } catch (error) {
    await receiver.stop();
    throw error;
  }
  const port = Number(/listening (\d+)/.exec(receiver.output())![1]);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    spans: () =>
      existsSync(spansFile)
        ? readFileSync(spansFile, "utf8").split("\n").filter(Boolean).map((line) => JSON.parse(line) as ReceivedSpan)
        : [],
    stop: async () => void (await receiver.stop()),
  };
}
