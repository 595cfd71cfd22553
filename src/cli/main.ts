// The `plugin-bridge` command: one file per subcommand, dispatched here.
import { ConfigError } from "../config.js";
import { clientCommand, clientUsage, EXIT, UsageError } from "./client-commands.js";
import { operatorCommand } from "./operator-commands.js";
import { sidecarToken } from "./sidecar-token.js";
import { serve, serveUsage } from "./serve.js";

const usage = `plugin-bridge <command>

Commands:
  serve    run a host (API + execution engine); see plugin-bridge serve --help
  dev      serve with its own nats-server and the config's sidecars, restarting a sidecar when its files change
  sidecar-token NAME --config FILE
           the token of a remote sidecar (auth.sidecars.remote), as the environment lines it starts with
  plugins ls, run, get, watch, abort, ls, sidecars ls, upgrade: talk to a running host (below)

${clientUsage}

${serveUsage}`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "serve":
      return await serve(rest);
    case "dev":
      return await serve(rest, true);
    case "plugins":
    case "run":
    case "get":
    case "watch":
    case "abort":
    case "ls":
    case "sidecars":
    case "upgrade":
    case "sidecar-token":
      try {
        if (command === "sidecar-token") return sidecarToken(rest);
        return command === "sidecars" || command === "upgrade" ? await operatorCommand(command, rest) : await clientCommand(command, rest);
      } catch (error) {
        // A bad command line (parseArgs throws TypeErrors with a code) or task file: say why, exit 2.
        if (error instanceof UsageError || (error instanceof TypeError && "code" in error)) {
          process.stderr.write(`plugin-bridge ${command}: ${error.message}\n`);
          return EXIT.usage;
        }
        throw error;
      }
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(usage + "\n");
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`plugin-bridge: unknown command "${command}"\n\n${usage}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const message = error instanceof ConfigError || (error instanceof TypeError && "code" in error)
      ? error.message
      : error instanceof Error ? (error.stack ?? error.message) : String(error);
    process.stderr.write(`plugin-bridge: ${message}\n`);
    process.exit(error instanceof ConfigError ? 2 : 1);
  },
);
