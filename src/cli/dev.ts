// `plugin-bridge dev`: for plugin authors, everything in one command — the host with its own nats-server (unless
// --nats-url says otherwise) and the sidecars of a config file, each restarted when a file in its working folder
// changes (new replicas first, then the old drain, as in a live upgrade).
import { watch, type FSWatcher } from "node:fs";
import path from "node:path";
import type { HostConfig } from "../config.js";
import type { Host } from "../host.js";
import type { Logger } from "../log.js";

/** Saving a file is often several writes: wait for quiet before restarting. */
const QUIET_MS = 300;
/** Changes here are not the plugin's code. */
const IGNORED = /(^|\/)(node_modules|\.git|__pycache__|\.venv|\.tools|\.data)(\/|$)|\.sock$|\.log$/;

export function watchSidecars(config: HostConfig, host: Host, log: Logger): () => void {
  const watchers: FSWatcher[] = [];
  for (const sidecar of config.sidecars) {
    let timer: NodeJS.Timeout | undefined;
    let restarting = Promise.resolve();
    const watcher = watch(sidecar.workingDir, { recursive: true }, (_event, file) => {
      if (file && IGNORED.test(file.toString())) return;
      clearTimeout(timer);
      timer = setTimeout(() => {
        log.info("files changed: restarting the sidecar", { sidecar: sidecar.name, file: file ? path.join(sidecar.workingDir, file.toString()) : undefined });
        restarting = restarting.then(() => host.restartSidecar(sidecar.name)).then(
          () => log.info("sidecar restarted", { sidecar: sidecar.name }),
          (error: unknown) => log.error("sidecar restart failed", { sidecar: sidecar.name, error }),
        );
      }, QUIET_MS);
    });
    watchers.push(watcher);
    log.info("watching for changes", { sidecar: sidecar.name, folder: sidecar.workingDir });
  }
  return () => {
    for (const watcher of watchers) watcher.close();
  };
}
