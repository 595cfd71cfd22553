// One small logger for the whole kit. It writes to stderr only: a sidecar's stdout belongs to the plugin
// author, and whatever runs the sidecar (a terminal, systemd, Kubernetes) collects stderr as its log.

export type LogLevel = "debug" | "info" | "warn" | "error";

export type LogFields = Record<string, unknown>;

export type Logger = (level: LogLevel, message: string, fields?: LogFields) => void;

const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** The lowest level written; PLUGIN_BRIDGE_LOG_LEVEL overrides the default "info". */
function threshold(): number {
  const configured = process.env.PLUGIN_BRIDGE_LOG_LEVEL as LogLevel | undefined;
  return levelRank[configured ?? "info"] ?? levelRank.info;
}

function formatValue(value: unknown): string {
  if (value instanceof Error) return JSON.stringify(value.message);
  if (typeof value === "string") return /[\s"=]/.test(value) || value === "" ? JSON.stringify(value) : value;
  return JSON.stringify(value) ?? String(value);
}

/** A logger whose lines are tagged with `component`, such as the plugin's name. One line per call. */
export function createLogger(component: string): Logger {
  const minimum = threshold();
  return (level, message, fields) => {
    if (levelRank[level] < minimum) return;
    let line = `${new Date().toISOString()} ${level.toUpperCase()} [${component}] ${message}`;
    if (fields) {
      for (const [key, value] of Object.entries(fields)) {
        if (value !== undefined) line += ` ${key}=${formatValue(value)}`;
      }
    }
    process.stderr.write(line + "\n");
  };
}
