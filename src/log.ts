// A small structured logger: one line per record on stderr, so stdout stays free for command output.
export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger whose lines carry `component` (and any other fields) as well. */
  child(fields: LogFields): Logger;
}

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

function levelFromEnv(): LogLevel {
  const value = process.env.PLUGIN_BRIDGE_LOG_LEVEL;
  return value === "debug" || value === "info" || value === "warn" || value === "error" ? value : "info";
}

function render(fields: LogFields): string {
  return Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => {
      const text = value instanceof Error ? value.message : typeof value === "string" ? value : JSON.stringify(value);
      return `${key}=${/[\s"=]/.test(text) ? JSON.stringify(text) : text}`;
    })
    .join(" ");
}

/** A logger writing `time level message key=value…` lines to `write` (default: stderr). */
export function createLogger(
  options: { level?: LogLevel; fields?: LogFields; write?: (line: string) => void } = {},
): Logger {
  const threshold = rank[options.level ?? levelFromEnv()];
  const write = options.write ?? ((line: string) => process.stderr.write(line + "\n"));
  const base = options.fields ?? {};
  const emit = (level: LogLevel, message: string, fields?: LogFields): void => {
    if (rank[level] < threshold) return;
    const rest = render({ ...base, ...fields });
    write(`${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${message}${rest ? " " + rest : ""}`);
  };
  return {
    debug: (message, fields) => emit("debug", message, fields),
    info: (message, fields) => emit("info", message, fields),
    warn: (message, fields) => emit("warn", message, fields),
    error: (message, fields) => emit("error", message, fields),
    child: (fields) => createLogger({ level: options.level ?? levelFromEnv(), fields: { ...base, ...fields }, write }),
  };
}
