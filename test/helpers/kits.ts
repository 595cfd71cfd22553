// How to run each kit's conformance reference plugin as a process. A language joins the suite by adding itself
// here; its reference plugin follows the comment of proto/pluginbridge/conformance/v1/conformance.proto.
import { execFile } from "node:child_process";
import { mkdirSync, renameSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { projectRoot, run, startTypeScriptSidecar, type RunningProcess } from "./processes.js";

const execFileAsync = promisify(execFile);

export interface Kit {
  language: string;
  /**
   * Builds what the kit needs once per test file (a Go binary); bounded by the caller's hook timeout. Test files run
   * in parallel and may build at the same time: each build lands by an atomic rename.
   */
  prepare(): Promise<void>;
  /** Starts the reference plugin; env carries PLUGIN_BRIDGE_* and CONFORMANCE_* settings. */
  start(env: NodeJS.ProcessEnv): RunningProcess;
}

const buildDir = path.join(projectRoot, ".tools", "build");
const goBinary = path.join(buildDir, "conformance-go");

export const KITS: Kit[] = [
  {
    language: "typescript",
    prepare: async () => {},
    start: (env) => startTypeScriptSidecar("sidecars/typescript/conformance/main.ts", String(env.PLUGIN_BRIDGE_NATS_URL), env),
  },
  {
    language: "python",
    prepare: async () => {},
    start: (env) => run(path.join(projectRoot, ".tools", "venv", "bin", "python"), ["-m", "plugin_bridge.conformance"], env),
  },
  {
    language: "go",
    prepare: async () => {
      mkdirSync(buildDir, { recursive: true });
      const building = `${goBinary}.${process.pid}`;
      await execFileAsync("go", ["build", "-o", building, "./conformance"], { cwd: path.join(projectRoot, "sidecars", "go") });
      renameSync(building, goBinary);
    },
    start: (env) => run(goBinary, [], env),
  },
];
