// The real `plugin-bridge` binary, run as a user would, against a host's URL.
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { projectRoot } from "./processes.js";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `plugin-bridge ...args` with PLUGIN_BRIDGE_URL set to `url` (and `env`); never throws for a non-zero exit. */
export async function runCli(url: string, args: string[], timeoutMs = 60_000, env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [path.join(projectRoot, "bin", "plugin-bridge.js"), ...args], {
      env: { ...process.env, PLUGIN_BRIDGE_URL: url, ...env },
      timeout: timeoutMs,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}
