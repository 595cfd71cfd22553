// Bench plugin: a sync plugin whose Do returns at once with the size of `custom.data` (the payload sent).
// Task type $BENCH_TASK_TYPE (default bench-echo), version 1; specification google.protobuf.Struct.
import { StructSchema } from "@bufbuild/protobuf/wkt";
import { defineSyncPlugin, phaseSuccess, serve } from "@plugin-bridge/kit";
import { PluginStats, serveStats } from "./stats.js";

const taskType = process.env.BENCH_TASK_TYPE ?? "bench-echo";
const stats = new PluginStats(0);
serveStats(stats);

await serve(
  defineSyncPlugin({
    name: taskType,
    version: "1.0.0",
    taskTypes: [{ type: taskType, version: 1 }],
    specification: StructSchema,
    do(ctx) {
      stats.count("do");
      const data = ctx.template.custom?.data;
      return phaseSuccess({ size: typeof data === "string" ? data.length : 0 });
    },
  }),
);
process.stderr.write("bench plugin ready\n");
