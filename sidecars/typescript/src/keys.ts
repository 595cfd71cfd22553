// Builds NATS KV keys from free-form ids. KV keys allow only [-/_=.A-Za-z0-9] with '.' separating tokens, and
// execution or instance ids may hold anything. Each token keeps letters, digits, '-' and '_' and escapes every
// other byte as "=HH", so two different ids never share a key (plain replacement by '_' would merge them).

function escapeToken(token: string): string {
  if (token === "") return "="; // '=' is otherwise always followed by two hex digits: unambiguous
  let out = "";
  for (const byte of new TextEncoder().encode(token)) {
    const char = String.fromCharCode(byte);
    out += /[A-Za-z0-9_-]/.test(char) ? char : `=${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** A KV key from tokens, each escaped: `kvKey("sensor", "run.1", "2")` is `sensor.run=2E1.2`. */
export function kvKey(...tokens: Array<string | number>): string {
  return tokens.map((token) => escapeToken(String(token))).join(".");
}

/** Where `pb_creates` keeps the resource meta of an attempt's Create: `<plugin>.<execution>.<attempt>`. */
export function createKey(plugin: string, executionId: string, attempt: number): string {
  return kvKey(plugin, executionId, attempt);
}

/**
 * Where `pb_creates` keeps the marker of an attempt's finished Finalize: `<plugin>.<execution>.<attempt>.finalize`.
 * The fourth token keeps it apart from every Create key, since no escaped token holds a '.'.
 */
export function finalizeKey(plugin: string, executionId: string, attempt: number): string {
  return kvKey(plugin, executionId, attempt, "finalize");
}
