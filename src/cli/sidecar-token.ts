// `plugin-bridge sidecar-token NAME --config FILE`: the token of a remote sidecar (one no host supervises), derived
// from the configuration's sidecar secret, as the environment lines the sidecar starts with. The name must be one
// of `auth.sidecars.remote` (it says which plugins the token may announce) or a supervised sidecar's.
import { parseArgs } from "node:util";
import { ConfigError } from "../config.js";
import { ConfigFileError, readConfigFile } from "../config-file.js";
import { SidecarAuth } from "../registry/sidecar-auth.js";
import { readSidecarSecret, SecurityConfigError } from "../security-config.js";
import { EXIT, UsageError } from "./client-commands.js";

export function sidecarToken(argv: string[]): number {
  const { values, positionals } = parseArgs({ args: argv, options: { config: { type: "string" } }, allowPositionals: true, strict: true });
  if (positionals.length !== 1) throw new UsageError("sidecar-token: name one sidecar");
  const name = positionals[0]!;
  const configFile = values.config ?? process.env.PLUGIN_BRIDGE_CONFIG;
  if (!configFile) throw new UsageError("sidecar-token: needs --config (the sidecar secret and the remote sidecars come from it)");
  // Only what a token needs is read: the other secrets of the file may live on other machines.
  let secret: Buffer;
  let known: string[];
  try {
    const file = readConfigFile(configFile);
    if (!file.auth.sidecarSecret) throw new ConfigError(`config file ${configFile}: auth.sidecars.secret is not set: no tokens to issue`);
    secret = readSidecarSecret(file.auth.sidecarSecret, process.env);
    known = [...file.auth.remoteSidecars.map((remote) => remote.name), ...file.sidecars.map((spec) => spec.name)];
  } catch (error) {
    if (error instanceof ConfigFileError || error instanceof SecurityConfigError) throw new ConfigError(error.message);
    throw error;
  }
  if (!known.includes(name)) {
    throw new ConfigError(`config file ${configFile}: "${name}" is neither in auth.sidecars.remote nor a supervised sidecar (known: ${known.join(", ") || "none"})`);
  }
  const token = new SidecarAuth(secret, () => new Set()).tokenFor(name);
  process.stdout.write(`PLUGIN_BRIDGE_TOKEN_ID=${name}\nPLUGIN_BRIDGE_TOKEN=${token}\n`);
  return EXIT.success;
}
