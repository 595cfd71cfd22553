// Bench plugin: a zero-work async plugin. Create returns at once; Get answers SUCCESS at once, or, when
// $BENCH_GO_FILE is set, RUNNING (same reason every time, so the host writes nothing) until that file exists.
// Resync interval $BENCH_RESYNC_MS (default 1 ms: poll again at once). Every Get's lag is kept in memory.
import { existsSync } from "node:fs";
import { StructSchema } from "@bufbuild/protobuf/wkt";
import { defineAsyncPlugin, phaseRunning, phaseSuccess, serve } from "@plugin-bridge/kit";
import { PluginStats, serveStats } from "./stats.js";

const taskType = process.env.BENCH_TASK_TYPE ?? "bench-zero";
const resyncMs = Number(process.env.BENCH_RESYNC_MS ?? 1);
const goFile = process.env.BENCH_GO_FILE;
const stats = new PluginStats(resyncMs);
serveStats(stats);

// existsSync per Get at thousands per second is a syscall each; check the file at most every 50 ms.
let go = !goFile;
let checkedAt = 0;
function released(): boolean {
  if (go) return true;
  const now = Date.now();
  if (now - checkedAt >= 50) {
    checkedAt = now;
    go = existsSync(goFile!);
  }
  return go;
}

await serve(
  defineAsyncPlugin({
    name: taskType,
    version: "1.0.0",
    taskTypes: [{ type: taskType, version: 1 }],
    specification: StructSchema,
    properties: { resyncInterval: resyncMs },
    create(ctx) {
      stats.created(ctx.executionId);
      return { id: ctx.executionId };
    },
    get(ctx) {
      const done = released();
      stats.polled(ctx.executionId, done);
      return done ? phaseSuccess({ gets: 1 }) : phaseRunning("waiting");
    },
    delete() {
      stats.count("delete");
    },
  }),
);
process.stderr.write("bench plugin ready\n");
