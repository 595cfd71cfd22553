// Runs one task through a host with the TypeScript SDK and prints its final event as proto3 JSON:
//   node --import tsx sidecars/typescript/examples/run-task.ts --base-url http://127.0.0.1:8080 \
//     --type sensor --spec '{"path":"/tmp/ready","deadline":"60s"}'
// The spec is parsed into the plugin's TYPED specification first, and `custom` is built from that message, as an
// SDK user's code would. Exit code: 0 when the task succeeded, 1 when it ended otherwise, 2 for usage or call errors.
import { parseArgs } from "node:util";
import { fromJsonString, toJsonString, type DescMessage } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { createBridgeClient, taskTemplate, type BridgeProtocol } from "@plugin-bridge/kit/sdk";
import { BatchJobSchema } from "@plugin-bridge/protocol/pluginbridge/plugins/batch/v1/batch_pb.js";
import { HttpRequestSchema } from "@plugin-bridge/protocol/pluginbridge/plugins/http/v1/http_pb.js";
import { FileSensorSchema } from "@plugin-bridge/protocol/pluginbridge/plugins/sensor/v1/sensor_pb.js";
import { SqlQuerySchema } from "@plugin-bridge/protocol/pluginbridge/plugins/sql/v1/sql_pb.js";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { TaskEventSchema } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";

/** The example plugins' specifications, by task type (all at type version 1). */
const SPECIFICATIONS: Record<string, DescMessage> = {
  http: HttpRequestSchema,
  sensor: FileSensorSchema,
  sql: SqlQuerySchema,
  batch: BatchJobSchema,
};

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      "base-url": { type: "string", default: "http://127.0.0.1:8080" },
      type: { type: "string" },
      spec: { type: "string", default: "{}" },
      protocol: { type: "string", default: "grpc" },
    },
  });
  const schema = SPECIFICATIONS[values.type ?? ""];
  if (!schema) {
    process.stderr.write(`run-task: --type must be one of ${Object.keys(SPECIFICATIONS).join(", ")}\n`);
    return 2;
  }
  const protocol = values.protocol as BridgeProtocol;
  if (!["connect", "grpc", "grpc-web"].includes(protocol)) {
    process.stderr.write("run-task: --protocol must be connect, grpc or grpc-web\n");
    return 2;
  }
  const spec = fromJsonString(schema, values.spec!);
  const client = createBridgeClient({ baseUrl: values["base-url"]!, protocol });
  const final = await client.run(taskTemplate(schema, { type: values.type!, version: 1 }, spec));
  process.stdout.write(toJsonString(TaskEventSchema, final) + "\n");
  return final.phaseInfo?.phase === Phase.SUCCESS ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    const message = error instanceof ConnectError ? `${Code[error.code]}: ${error.rawMessage}` : error instanceof Error ? error.message : String(error);
    process.stderr.write(`run-task: ${message}\n`);
    process.exit(2);
  },
);
