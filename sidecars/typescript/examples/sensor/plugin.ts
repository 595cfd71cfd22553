// The `sensor` plugin, after Flyte's FileSensor: the task succeeds once a file exists and fails when its
// deadline passes first. An async plugin: Create records what to watch, Get looks, Delete stops watching.
// Nothing runs between calls: the host polls Get every resync interval, and the meta carries all state.
import { stat } from "node:fs/promises";
import path from "node:path";
import { durationMs } from "@bufbuild/protobuf/wkt";
import {
  defineAsyncPlugin,
  GrpcStatus,
  phasePermanentFailure,
  phaseRunning,
  phaseSuccess,
  PluginError,
  type PhaseResult,
} from "@plugin-bridge/kit";
import { ErrorKind } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import {
  FileSensorSchema,
  type FileSensor,
} from "@plugin-bridge/protocol/pluginbridge/plugins/sensor/v1/sensor_pb.js";

const DEFAULT_DEADLINE_MS = 60 * 60 * 1000;

/** What Create returns and every Get and Delete receives back. */
export interface SensorMeta {
  path: string;
  /** Epoch milliseconds after which the sensor fails. */
  deadline: number;
}

/** Create: checks the spec and fixes the deadline from now. */
export function startSensor(spec: FileSensor, now = Date.now()): SensorMeta {
  if (!spec.path || !path.isAbsolute(spec.path)) {
    throw new PluginError(
      GrpcStatus.INVALID_ARGUMENT,
      `template.custom.path: ${JSON.stringify(spec.path)} is not an absolute path`,
    );
  }
  const waitMs = spec.deadline ? durationMs(spec.deadline) : DEFAULT_DEADLINE_MS;
  if (waitMs < 0) throw new PluginError(GrpcStatus.INVALID_ARGUMENT, "template.custom.deadline: must not be negative");
  return { path: spec.path, deadline: now + waitMs };
}

/** Get: the file exists (success), the deadline passed (failure), or keep waiting. */
export async function checkSensor(meta: SensorMeta, now = Date.now()): Promise<PhaseResult> {
  try {
    const info = await stat(meta.path);
    return phaseSuccess({ path: meta.path, size: info.size, modifiedAt: info.mtime.toISOString() });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // Anything else (EACCES, EIO) is the machine's problem, not an absent file: let it count as a system failure.
    if (code !== "ENOENT" && code !== "ENOTDIR") throw error;
  }
  if (now >= meta.deadline) {
    return phasePermanentFailure(
      "DeadlinePassed",
      `${meta.path} did not appear before ${new Date(meta.deadline).toISOString()}`,
      ErrorKind.USER,
    );
  }
  return phaseRunning(`waiting for ${meta.path}`);
}

export const sensorPlugin = defineAsyncPlugin({
  name: "sensor",
  version: "1.0.0",
  taskTypes: [{ type: "sensor", version: 1 }],
  specification: FileSensorSchema,
  properties: { resyncInterval: 1_000 },
  create: (ctx): SensorMeta => startSensor(ctx.spec),
  get: (_ctx, meta) => checkSensor(meta),
  // Nothing remote to release: once the host stops calling Get, nothing watches the file any more.
  delete: () => undefined,
});
