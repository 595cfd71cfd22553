// Writes the descriptors of flyteidl2's connector service, and of every file it imports, as a FileDescriptorSet
// (argument: the output file). The descriptors are the ones @flyteorg/flyteidl2 embeds in its generated code,
// so what we generate from them is Flyte's published contract, not a copy of it (buf.gen.flyte2.yaml).
import { writeFileSync } from "node:fs";
import { create, toBinary, type DescFile } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

// Loaded by name at run time (tsx runs the package's TypeScript): a static import would hand those files to our
// strict tsc, which refuses them (see buf.gen.flyte2.yaml).
const CONNECTOR_SERVICE = "@flyteorg/flyteidl2/flyteidl2/connector/service_pb.ts";

const output = process.argv[2];
if (!output) throw new Error("usage: flyteidl2-descriptors.ts <output.binpb>");
const { file_flyteidl2_connector_service: connectorService } = (await import(CONNECTOR_SERVICE)) as { file_flyteidl2_connector_service: DescFile };

const files = new Map<string, DescFile>();
function visit(file: DescFile): void {
  if (files.has(file.name)) return;
  file.dependencies.forEach(visit);
  files.set(file.name, file); // after its dependencies: a FileDescriptorSet lists imports first
}
visit(connectorService);
writeFileSync(output, toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: [...files.values()].map((file) => file.proto) })));
