// The `plugin-bridge` command: one file per subcommand, dispatched here.
import { ConfigError } from "../config.js";
import { serve, serveUsage } from "./serve.js";

const usage = `plugin-bridge <command>

Commands:
  serve    run a host (API + execution engine); see plugin-bridge serve --help

${serveUsage}`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "serve":
      return await serve(rest);
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
