// The public surface of the plugin-bridge host package, exported by name. Internals stay importable only by path.
export { startHost, type Host } from "./host.js";
export { ConfigError, DEFAULT_CONFIG, envName, flagName, loadConfig, type HostConfig } from "./config.js";
export { createLogger, type Logger, type LogFields, type LogLevel } from "./log.js";
export {
  freePort,
  natsServerBinary,
  startNatsServer,
  type NatsServerOptions,
  type NatsServerProcess,
} from "./coordination/nats-server-process.js";
