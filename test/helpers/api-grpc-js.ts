// A grpc-js client that needs no generated grpc-js stubs: the generic Client with protobuf-es (de)serialisers,
// so the test exercises the real gRPC wire format from the implementation other gRPC users run.
import * as grpc from "@grpc/grpc-js";
import { fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape, create } from "@bufbuild/protobuf";

export function createGrpcJsClient(port: number): grpc.Client {
  return new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

export interface GrpcJsOutcome<O> {
  response?: O;
  error?: grpc.ServiceError;
}

/** One unary call; resolves with the response or the gRPC error, never rejects. */
export function grpcJsUnary<I extends DescMessage, O extends DescMessage>(
  client: grpc.Client,
  path: string,
  input: I,
  output: O,
  request: MessageInitShape<I>,
): Promise<GrpcJsOutcome<MessageShape<O>>> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      (message: MessageShape<I>) => Buffer.from(toBinary(input, message)),
      (bytes: Buffer) => fromBinary(output, bytes),
      create(input, request),
      { deadline: Date.now() + 10_000 },
      (error, response) => resolve(error ? { error } : { response }),
    );
  });
}

/** Opens a server stream; the caller reads it with for-await and cancels it. */
export function grpcJsServerStream<I extends DescMessage, O extends DescMessage>(
  client: grpc.Client,
  path: string,
  input: I,
  output: O,
  request: MessageInitShape<I>,
): grpc.ClientReadableStream<MessageShape<O>> {
  return client.makeServerStreamRequest(
    path,
    (message: MessageShape<I>) => Buffer.from(toBinary(input, message)),
    (bytes: Buffer) => fromBinary(output, bytes),
    create(input, request),
  );
}
