// What the chaos suite runs: a seeded mix of async and sync executions of the reference plugins, each with the
// terminal phase (and error code, and number of attempts) its Script makes certain, so that an execution ending
// any other way under chaos is a wrong terminal phase rather than bad luck.
import type { JsonObject } from "@bufbuild/protobuf";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { pluginName } from "./fleet.js";
import type { Random } from "./random.js";

/**
 * How an execution is submitted: CreateTask (async plugin, polled), ExecuteTask with an idempotency key (sync plugin
 * on the durable path: queued, stepped by any host) or ExecuteTask without one (sync fast path: Do from the API
 * handler, stored once with its outcome).
 */
export type Route = "create" | "execute-keyed" | "execute-direct";

export interface Expected {
  phase: Phase;
  /** The error code of a failure. */
  code?: string;
  /** The attempt the execution ends in. */
  attempt: number;
}

export interface PlannedExecution {
  index: number;
  /** The Script shape, for reports ("async gated", "sync retryable"…). */
  shape: string;
  route: Route;
  language: string;
  type: string;
  custom: JsonObject;
  retries: number;
  /** The template's timeout, when the shape needs one. */
  timeoutMs?: number;
  /** AbortTask this long after the execution was accepted. */
  abortAfterMs?: number;
  /** The idempotency key (every route but execute-direct), unique per run. */
  key?: string;
  expected: Expected;
}

export interface WorkloadFiles {
  /** Written by the suite once the chaos is over: gated executions then succeed. */
  gate: string;
  /** Never written: executions waiting for it end only by timeout or abort. */
  never: string;
}

/** How long the executions run: short ones for the bounded CI run, longer ones (more polls) for the full run. */
export type Length = "short" | "long";

interface Shape {
  name: string;
  weight: number;
  route: Route;
  build(random: Random, files: WorkloadFiles, length: Length): { custom: JsonObject; retries?: number; timeoutMs?: number; abortAfterMs?: number; expected: Expected };
}

const success = (attempt = 1): Expected => ({ phase: Phase.SUCCESS, attempt });
const failed = (code: string, attempt = 1): Expected => ({ phase: Phase.PERMANENT_FAILURE, code, attempt });

/**
 * The mix, by weight. Gated executions poll through the whole chaos window (they are what a takeover is measured
 * on); short ones come and go during it; the failing shapes make every terminal phase and the retry path occur.
 */
const SHAPES: Shape[] = [
  { name: "async gated", weight: 7, route: "create", build: (r, files) => ({ custom: { waitForFile: files.gate, polls: r.int(0, 2) }, expected: success() }) },
  {
    name: "async polled",
    weight: 7,
    route: "create",
    build: (r, _files, length) => ({ custom: { polls: length === "short" ? r.int(0, 3) : r.int(2, 12), createDelayMs: r.int(0, 150) }, expected: success() }),
  },
  { name: "async get permanent", weight: 2, route: "create", build: (r) => ({ custom: { polls: r.int(0, 1), get: "BEHAVIOR_PERMANENT", message: "scripted end" }, expected: failed("Scripted") }) },
  { name: "async get retryable", weight: 2, route: "create", build: () => ({ custom: { get: "BEHAVIOR_RETRYABLE", message: "scripted retry" }, retries: 1, expected: failed("Scripted", 2) }) },
  { name: "async create user error", weight: 1, route: "create", build: () => ({ custom: { create: "BEHAVIOR_USER_ERROR", message: "scripted refusal" }, expected: failed("PluginInvalidArgument") }) },
  { name: "async get crash", weight: 1, route: "create", build: () => ({ custom: { get: "BEHAVIOR_CRASH", message: "scripted crash" }, expected: failed("SystemFailure") }) },
  { name: "async timeout", weight: 1, route: "create", build: (_r, files) => ({ custom: { waitForFile: files.never }, timeoutMs: 3_000, expected: failed("Timeout") }) },
  { name: "async aborted", weight: 1, route: "create", build: (r, files) => ({ custom: { waitForFile: files.never }, abortAfterMs: r.int(200, 3_000), expected: { phase: Phase.ABORTED, attempt: 1 } }) },
  { name: "sync keyed ok", weight: 5, route: "execute-keyed", build: () => ({ custom: {}, expected: success() }) },
  { name: "sync keyed permanent", weight: 1, route: "execute-keyed", build: () => ({ custom: { do: "BEHAVIOR_PERMANENT", message: "scripted end" }, expected: failed("Scripted") }) },
  { name: "sync keyed retryable", weight: 1, route: "execute-keyed", build: () => ({ custom: { do: "BEHAVIOR_RETRYABLE", message: "scripted retry" }, retries: 1, expected: failed("Scripted", 2) }) },
  { name: "sync direct ok", weight: 6, route: "execute-direct", build: () => ({ custom: {}, expected: success() }) },
  { name: "sync direct permanent", weight: 1, route: "execute-direct", build: () => ({ custom: { do: "BEHAVIOR_PERMANENT", message: "scripted end" }, expected: failed("Scripted") }) },
  { name: "sync direct user error", weight: 1, route: "execute-direct", build: () => ({ custom: { do: "BEHAVIOR_USER_ERROR", message: "scripted refusal" }, expected: failed("PluginInvalidArgument") }) },
  { name: "sync direct retryable", weight: 1, route: "execute-direct", build: () => ({ custom: { do: "BEHAVIOR_RETRYABLE", message: "scripted retry" }, retries: 1, expected: failed("Scripted", 2) }) },
];

/** `count` executions over the given languages, the same for the same seed. */
export function planWorkload(count: number, length: Length, random: Random, languages: string[], files: WorkloadFiles, runTag: string): PlannedExecution[] {
  const total = SHAPES.reduce((sum, shape) => sum + shape.weight, 0);
  const planned: PlannedExecution[] = [];
  for (let index = 0; index < count; index++) {
    let roll = random.next() * total;
    const shape = SHAPES.find((candidate) => (roll -= candidate.weight) < 0) ?? SHAPES[0]!;
    const language = random.pick(languages);
    const built = shape.build(random, files, length);
    const kind = shape.route === "create" ? "async" : "sync";
    planned.push({
      index,
      shape: shape.name,
      route: shape.route,
      language,
      type: pluginName(language, kind),
      // echo ties the execution to its plan in the plugin's outputs.
      custom: { ...built.custom, echo: `${runTag}-${index}` },
      retries: built.retries ?? 0,
      ...(built.timeoutMs !== undefined && { timeoutMs: built.timeoutMs }),
      ...(built.abortAfterMs !== undefined && { abortAfterMs: built.abortAfterMs }),
      ...(shape.route !== "execute-direct" && { key: `${runTag}-${index}` }),
      expected: built.expected,
    });
  }
  return planned;
}
