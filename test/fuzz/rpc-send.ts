// Sends one RPC case to a server over HTTP/2 (a pooled session, or one of its own for requests that may end the
// session) or HTTP/1.1, judges the answer, and keeps the counts a run reports about the transport itself.
import type * as http from "node:http";
import { causeOf, judge, verdictOf } from "./oracle.js";
import { Random } from "./random.js";
import { rpcCase, type MethodTarget, type RpcCaseOptions } from "./rpc-cases.js";
import type { CaseOutcome } from "./run.js";
import { http1Call, http2Call, type Http2Pool, type RawAnswer, type RawRequest } from "./wire.js";

export type Via = { http2: Http2Pool } | { http1: { host: string; port: number; agent: http.Agent } };

/** What happened at the transport, over a whole run: for the report's notes. */
export const transportCounts = {
  /** Streams a server refused (REFUSED_STREAM) on a shared session it was closing, retried on a new one. */
  refusedStreams: 0,
  /** HTTP/2 answers complete while the request was still being sent (over the read limit): the fuzzer reset those. */
  answeredBeforeRequestEnd: 0,
};

/** An announced endpoint ("unix:/path" or "host:port") as an HTTP/2 target. */
export function endpointTarget(endpoint: string): { url: string } | { socketPath: string } {
  return endpoint.startsWith("unix:") ? { socketPath: endpoint.slice("unix:".length) } : { url: `http://${endpoint}` };
}

/** The request and the raw answer, for a replayed case. */
function describeCase(request: RawRequest, answer: RawAnswer): string {
  const headers = Object.entries(request.headers).map(([name, value]) => `${name}: ${String(value).slice(0, 120)}`).slice(0, 20).join("\n  ");
  return [
    `request: ${request.method ?? "POST"} ${request.path}`,
    `  ${headers}`,
    `  body (${request.body.length} bytes): ${Buffer.from(request.body.subarray(0, 512)).toString("hex")}`,
    `answer: HTTP/${answer.httpVersion} ${answer.status ?? "-"} ${answer.cut ? `(cut: ${answer.cut})` : ""} ${answer.resetCode !== undefined ? `reset ${answer.resetCode}` : ""} ${answer.error ?? ""}`,
    `  headers: ${JSON.stringify(answer.headers)}`,
    `  trailers: ${JSON.stringify(answer.trailers)}`,
    `  body (${answer.body.length} bytes): ${answer.body.subarray(0, 512).toString("hex")}`,
  ].join("\n");
}

export async function sendRpcCase(random: Random, methods: readonly MethodTarget[], options: RpcCaseOptions, via: Via): Promise<CaseOutcome> {
  const made = rpcCase(random, methods, options);
  let answer: RawAnswer;
  if ("http2" in via) {
    const session = made.ownSession ? via.http2.fresh() : via.http2.session();
    try {
      answer = await http2Call(session, made.request);
    } finally {
      if (made.ownSession) session.destroy();
    }
    // REFUSED_STREAM: the server did not look at the request (a shared session it was closing); HTTP/2 says retry.
    if (answer.resetCode === 7 && answer.status === undefined) {
      transportCounts.refusedStreams++;
      const retry = via.http2.fresh();
      answer = await http2Call(retry, made.request).finally(() => retry.destroy());
    }
  } else {
    answer = await http1Call({ ...via.http1, agent: made.ownSession ? false : via.http1.agent }, made.request);
  }
  if (answer.requestUnfinished) transportCounts.answeredBeforeRequestEnd++;
  const verdict = verdictOf(answer, made.expectation);
  const finding = judge(verdict, made.expectation);
  return {
    method: made.method,
    label: verdict.label,
    how: made.how,
    finding,
    details: () => describeCase(made.request, answer),
    note: !finding && verdict.code === "INTERNAL" ? `INTERNAL accepted as the library's: ${causeOf(verdict.message)}` : undefined,
    answers: verdict.answers,
  };
}
