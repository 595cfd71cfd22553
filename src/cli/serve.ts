// `plugin-bridge serve`: runs a host until SIGTERM or SIGINT, then stops it gracefully.
import { parseArgs } from "node:util";
import { ConfigError, DEFAULT_CONFIG, envName, flagName, loadConfig, type Settings } from "../config.js";
import { watchSidecars } from "./dev.js";
import { startHost } from "../host.js";
import { createLogger } from "../log.js";

type Key = keyof Settings;
const KEYS = Object.keys(DEFAULT_CONFIG) as Key[];

export const serveUsage = `plugin-bridge serve [--config FILE] [--SETTING VALUE ...]

Runs a host: the API (Connect, gRPC and gRPC-Web on one port) and the execution engine. Without --nats-url
it starts its own nats-server with JetStream in --data-dir. Settings (flag, environment variable, default):
${KEYS.map((key) => `  --${flagName(key).padEnd(22)} ${envName(key).padEnd(36)} ${JSON.stringify(DEFAULT_CONFIG[key])}`).join("\n")}
A YAML config file (--config or PLUGIN_BRIDGE_CONFIG) holds the same settings in sections (nats, listen, engine,
secrets), the sidecars to run (docs/architecture.md, "Configuration") and, only there, who may call the API and
which sidecars may announce plugins (auth; docs/security.md); flags win over the environment, the environment
over the file.`;

/**
 * `serve`, or with `dev` the same plus a watch on every sidecar's folder that restarts it when its files change
 * (a config file is required then: the sidecars come from it).
 */
export async function serve(argv: string[], dev = false): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: "string" },
      help: { type: "boolean", short: "h" },
      ...Object.fromEntries(KEYS.map((key) => [flagName(key), { type: "string" as const }])),
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(serveUsage + "\n");
    return 0;
  }
  const flags: Partial<Record<Key, string>> = {};
  for (const key of KEYS) {
    const value = (values as Record<string, unknown>)[flagName(key)];
    if (typeof value === "string") flags[key] = value;
  }
  const configFile = typeof values.config === "string" ? values.config : process.env.PLUGIN_BRIDGE_CONFIG;
  if (dev && !configFile) throw new ConfigError("dev needs --config: the sidecars to run come from it");
  const config = loadConfig(flags, process.env, configFile);
  const log = createLogger({ fields: { component: "host" } });
  // UpgradeSidecar takes the sidecar's entry from the file as it reads at that moment.
  const readSidecars = configFile ? () => loadConfig(flags, process.env, configFile).sidecars : undefined;
  const host = await startHost(config, log, readSidecars && { readSidecars });
  const stopWatching = dev ? watchSidecars(config, host, log) : () => {};
  return await new Promise<number>((resolve) => {
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (signalled) {
        log.warn("second signal: exiting without waiting", { signal });
        resolve(1);
        return;
      }
      signalled = true;
      log.info("signal received", { signal });
      stopWatching();
      host.stop().then(
        () => resolve(0),
        (error: unknown) => {
          log.error("stop failed", { error });
          resolve(1);
        },
      );
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    // SIGHUP: read the configuration again and apply its sidecars (a changed one is upgraded: new replicas first,
    // then the old ones drain). Other settings need a restart; a file that does not load changes nothing.
    let reloading = Promise.resolve();
    process.on("SIGHUP", () => {
      reloading = reloading.then(async () => {
        try {
          const next = loadConfig(flags, process.env, configFile);
          log.info("reloading the sidecars from the configuration");
          await host.reloadSidecars(next.sidecars);
          log.info("configuration reloaded");
        } catch (error) {
          log.error("configuration not reloaded", { error: error instanceof Error ? error.message : String(error) });
        }
      });
    });
  });
}
