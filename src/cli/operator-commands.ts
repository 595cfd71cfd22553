// The commands for operators of a host's supervised sidecars: `sidecars ls` and `upgrade SIDECAR`. They talk to
// the host's SidecarService on its API port, like the client commands talk to TaskService.
import { parseArgs } from "node:util";
import { toJson } from "@bufbuild/protobuf";
import {
  SupervisedSidecarSchema,
  UpgradeSidecarResponseSchema,
  type SupervisedReplica,
  type SupervisedSidecar,
} from "@plugin-bridge/protocol/pluginbridge/v1/sidecar_service_pb.js";
import { common, EXIT, guarded, replicaStateName, shared, UsageError } from "./client-commands.js";
import { table } from "./table.js";

function replicaRows(sidecar: SupervisedSidecar, replicas: SupervisedReplica[] = sidecar.replicas): string[][] {
  return replicas.map((replica) => [
    sidecar.name,
    replica.instanceId,
    replica.endpoint,
    replicaStateName(replica.state),
    replica.pid ? String(replica.pid) : "-",
    String(replica.restarts),
    replica.lastExit,
  ]);
}

const REPLICA_HEADER = ["SIDECAR", "INSTANCE", "ENDPOINT", "STATE", "PID", "RESTARTS", "LAST EXIT"];

export async function operatorCommand(command: string, argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: shared, allowPositionals: true, strict: true });
  const c = common(values);
  if (command === "sidecars") {
    if (positionals[0] !== "ls" || positionals.length !== 1) throw new UsageError(`sidecars: the only subcommand is "ls"`);
    return await guarded(async () => {
      const { sidecars } = await c.sidecars.listSidecars({});
      if (c.json) for (const sidecar of sidecars) c.out(JSON.stringify(toJson(SupervisedSidecarSchema, sidecar)));
      else c.out(table(REPLICA_HEADER, sidecars.flatMap((sidecar) => replicaRows(sidecar))));
      return EXIT.success;
    });
  }
  if (positionals.length !== 1) throw new UsageError("upgrade: name one sidecar");
  return await guarded(async () => {
    if (!c.json) process.stderr.write(`upgrading ${positionals[0]}: new replicas first, then the old ones drain\n`);
    const response = await c.sidecars.upgradeSidecar({ name: positionals[0]! });
    if (c.json) {
      c.out(JSON.stringify(toJson(UpgradeSidecarResponseSchema, response)));
      return EXIT.success;
    }
    const sidecar = response.sidecar!;
    c.out(`upgraded ${sidecar.name}: ${sidecar.command.join(" ")}`);
    c.out(table(["", ...REPLICA_HEADER], [
      ...replicaRows(sidecar).map((row) => ["new", ...row]),
      ...replicaRows(sidecar, response.retired).map((row) => ["old", ...row]),
    ]));
    return EXIT.success;
  });
}
