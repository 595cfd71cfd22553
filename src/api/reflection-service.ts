// gRPC server reflection (grpc.reflection.v1 and its predecessor v1alpha, which speak the same messages) on the
// public port, so that grpcurl, `buf curl` and other reflection clients call the host without its proto files.
// Answers come from the descriptors protoc-gen-es embedded in the generated code: each service's file and,
// transitively, the files it imports (google/protobuf/*.proto included). The reflection protos themselves are
// gRPC's, generated from @grpc/reflection's copy (buf.gen.yaml).
import { toBinary, type DescExtension, type DescFile, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectRouter } from "@connectrpc/connect";
import * as v1 from "@plugin-bridge/protocol/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "@plugin-bridge/protocol/grpc/reflection/v1alpha/reflection_pb.js";

/** The services the reflection service adds itself (listed, and described, like any other). */
export const REFLECTION_SERVICES: readonly DescService[] = [v1.ServerReflection, v1alpha.ServerReflection];

type ReflectionRequest = v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest;

/** A response's `message_response`, the same in both versions. */
type Answer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: Array<{ name: string }> } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

const failure = (code: Code, message: string): Answer => ({ case: "errorResponse", value: { errorCode: code, errorMessage: message } });

/** Every file, symbol and extension reachable from a set of services, and how to answer for them. */
export class DescriptorIndex {
  private readonly files = new Map<string, DescFile>();
  private readonly encoded = new Map<string, Uint8Array>();
  /** Fully-qualified names of messages, enums, services, methods and extensions → the file that defines them. */
  private readonly symbols = new Map<string, DescFile>();
  /** Message name → extension number → the file that declares the extension. */
  private readonly extensions = new Map<string, Map<number, DescFile>>();
  private readonly messages = new Set<string>();
  readonly serviceNames: readonly string[];

  constructor(services: readonly DescService[]) {
    for (const service of services) this.addFile(service.file);
    this.serviceNames = [...new Set(services.map((service) => service.typeName))].sort();
  }

  private addFile(file: DescFile): void {
    const name = file.proto.name;
    if (this.files.has(name)) return;
    this.files.set(name, file);
    for (const dependency of file.dependencies) this.addFile(dependency);
    for (const message of file.messages) this.addMessage(message, file);
    for (const enumeration of file.enums) this.symbols.set(enumeration.typeName, file);
    for (const extension of file.extensions) this.addExtension(extension, file);
    for (const service of file.services) {
      this.symbols.set(service.typeName, file);
      for (const method of service.methods) this.symbols.set(`${service.typeName}.${method.name}`, file);
    }
  }

  private addMessage(message: DescMessage, file: DescFile): void {
    this.symbols.set(message.typeName, file);
    this.messages.add(message.typeName);
    for (const nested of message.nestedMessages) this.addMessage(nested, file);
    for (const enumeration of message.nestedEnums) this.symbols.set(enumeration.typeName, file);
    for (const extension of message.nestedExtensions) this.addExtension(extension, file);
  }

  private addExtension(extension: DescExtension, file: DescFile): void {
    this.symbols.set(extension.typeName, file);
    let byNumber = this.extensions.get(extension.extendee.typeName);
    if (!byNumber) this.extensions.set(extension.extendee.typeName, (byNumber = new Map()));
    byNumber.set(extension.number, file);
  }

  private bytesOf(file: DescFile): Uint8Array {
    let bytes = this.encoded.get(file.proto.name);
    if (!bytes) this.encoded.set(file.proto.name, (bytes = toBinary(FileDescriptorProtoSchema, file.proto)));
    return bytes;
  }

  /**
   * The file, then those it imports (transitively) that this stream has not been sent yet, as grpc-go's server
   * does: a client that already holds a dependency is not sent it again, the file asked for always is.
   */
  private fileWithDependencies(file: DescFile, sent: Set<string>): Answer {
    const out: Uint8Array[] = [];
    const queue = [file];
    for (let next = queue.shift(); next; next = queue.shift()) {
      const name = next.proto.name;
      if (next === file || !sent.has(name)) {
        out.push(this.bytesOf(next));
        sent.add(name);
        queue.push(...next.dependencies);
      }
    }
    return { case: "fileDescriptorResponse", value: { fileDescriptorProto: out } };
  }

  /** The answer to one request on a stream; `sent` is the files the stream has been sent so far. */
  answer(request: ReflectionRequest, sent: Set<string>): Answer {
    const asked = request.messageRequest;
    switch (asked.case) {
      case "fileByFilename": {
        const file = this.files.get(asked.value);
        return file ? this.fileWithDependencies(file, sent) : failure(Code.NotFound, `file "${asked.value}" not found`);
      }
      case "fileContainingSymbol": {
        const file = this.symbols.get(asked.value.replace(/^\./, ""));
        return file ? this.fileWithDependencies(file, sent) : failure(Code.NotFound, `symbol "${asked.value}" not found`);
      }
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = asked.value;
        const file = this.extensions.get(containingType.replace(/^\./, ""))?.get(extensionNumber);
        return file
          ? this.fileWithDependencies(file, sent)
          : failure(Code.NotFound, `extension ${extensionNumber} of "${containingType}" not found`);
      }
      case "allExtensionNumbersOfType": {
        const type = asked.value.replace(/^\./, "");
        if (!this.messages.has(type)) return failure(Code.NotFound, `message type "${asked.value}" not found`);
        const numbers = [...(this.extensions.get(type)?.keys() ?? [])].sort((a, b) => a - b);
        return { case: "allExtensionNumbersResponse", value: { baseTypeName: type, extensionNumber: numbers } };
      }
      case "listServices":
        return { case: "listServicesResponse", value: { service: this.serviceNames.map((name) => ({ name })) } };
      default:
        return failure(Code.InvalidArgument, "the request names nothing to look up (message_request is empty)");
    }
  }

  /** One reflection stream: an answer for each request, in order. */
  async *converse<R extends ReflectionRequest>(requests: AsyncIterable<R>): AsyncGenerator<{ validHost: string; originalRequest: R; messageResponse: Answer }> {
    const sent = new Set<string>();
    for await (const request of requests) {
      yield { validHost: request.host, originalRequest: request, messageResponse: this.answer(request, sent) };
    }
  }
}

/**
 * Registers grpc.reflection.v1 and v1alpha ServerReflection on `router`, describing `services` (the reflection
 * services are added to them).
 */
export function registerReflectionService(router: ConnectRouter, services: readonly DescService[]): void {
  const index = new DescriptorIndex([...services, ...REFLECTION_SERVICES]);
  router.service(v1.ServerReflection, { serverReflectionInfo: (requests) => index.converse(requests) });
  router.service(v1alpha.ServerReflection, { serverReflectionInfo: (requests) => index.converse(requests) });
}
