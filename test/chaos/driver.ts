// The clients of the chaos suite: they submit the planned executions at a steady pace across the live hosts, act
// as careful callers do (a failed call goes to another host; a keyed call is repeated with its key, so nothing runs
// twice; a broken sync call without a key is sent again, as a caller wanting an answer does), abort what the plan
// says, and finally read every execution back. Every loop here is bounded in count and in time.
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import type { TaskExecution, TaskService } from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";
import { taskClient } from "../helpers/clients.js";
import type { FleetHost } from "./fleet.js";
import type { PlannedExecution } from "./workload.js";

export const NAMESPACE = "chaos";

const FINAL_PHASES = [Phase.SUCCESS, Phase.PERMANENT_FAILURE, Phase.ABORTED];
export const isFinal = (phase: Phase | undefined): boolean => phase !== undefined && FINAL_PHASES.includes(phase);

/** Codes a careful caller retries on another host: the host or NATS is in trouble, or a plugin is not routed yet. */
const TRANSIENT = new Set([Code.Unavailable, Code.DeadlineExceeded, Code.Internal, Code.Unknown, Code.Aborted, Code.NotFound, Code.Canceled, Code.ResourceExhausted]);

export interface Submission {
  readonly planned: PlannedExecution;
  /** The execution's id, once a host answered with it. */
  id?: string;
  /** When a host first answered with the id (epoch ms). */
  acceptedAt?: number;
  /** The final phase a sync caller saw on its stream. */
  streamFinal?: Phase;
  /** Calls that failed and were sent again, by code name. */
  retriedCalls: string[];
  /** Direct sync calls that broke before any answer and were sent again as a new call. */
  directResends: number;
  /** Why the driver stopped trying: a refused call or the time bound. */
  gaveUp?: string;
  /** The execution as read back at the end. */
  final?: TaskExecution;
}

export interface DriverOptions {
  liveHosts(): FleetHost[];
  /** The submissions are spread evenly over this window. */
  windowMs: number;
  /** Calls in flight at once. */
  concurrency: number;
  /** How long one execution's submission may keep retrying before the driver gives up on it. */
  submitBoundMs: number;
}

/** A client per host URL; calls go round-robin over the live hosts. */
class Clients {
  private readonly byUrl = new Map<string, Client<typeof TaskService>>();
  private turn = 0;
  constructor(private readonly liveHosts: () => FleetHost[]) {}

  next(): Client<typeof TaskService> {
    const hosts = this.liveHosts();
    if (hosts.length === 0) throw new Error("no live host");
    const host = hosts[this.turn++ % hosts.length]!;
    let client = this.byUrl.get(host.url);
    if (!client) {
      client = taskClient(host.url);
      this.byUrl.set(host.url, client);
    }
    return client;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function codeName(error: unknown): string {
  return Code[ConnectError.from(error).code] ?? "Unknown";
}

export class Driver {
  private readonly clients: Clients;
  private readonly aborts: Promise<void>[] = [];
  /** The first message seen for each code of a retried call, to say what the callers met. */
  readonly retryMessages = new Map<string, string>();

  constructor(private readonly options: DriverOptions) {
    this.clients = new Clients(options.liveHosts);
  }

  /** Submits every planned execution (resolving once each was accepted, given up, or its sync stream ended). */
  async submitAll(planned: PlannedExecution[]): Promise<Submission[]> {
    const submissions: Submission[] = planned.map((p) => ({ planned: p, retriedCalls: [], directResends: 0 }));
    const started = Date.now();
    const spacing = this.options.windowMs / Math.max(1, planned.length);
    let nextIndex = 0;
    const worker = async (): Promise<void> => {
      while (nextIndex < submissions.length) {
        const submission = submissions[nextIndex++]!;
        const due = started + submission.planned.index * spacing;
        if (due > Date.now()) await sleep(due - Date.now());
        await this.submit(submission);
      }
    };
    await Promise.all(Array.from({ length: this.options.concurrency }, worker));
    await Promise.all(this.aborts);
    return submissions;
  }

  private async submit(submission: Submission): Promise<void> {
    const deadline = Date.now() + this.options.submitBoundMs;
    const { planned } = submission;
    const request = {
      template: {
        type: planned.type,
        typeVersion: 1,
        custom: planned.custom,
        metadata: { retries: planned.retries, ...(planned.timeoutMs !== undefined && { timeout: { seconds: BigInt(Math.floor(planned.timeoutMs / 1000)), nanos: (planned.timeoutMs % 1000) * 1_000_000 } }) },
      },
      metadata: { namespace: NAMESPACE },
      idempotencyKey: planned.key ?? "",
    };
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      if (attempt > 0) await sleep(Math.min(1_000, 100 * attempt));
      try {
        const client = this.clients.next();
        if (planned.route === "create") {
          const { execution } = await client.createTask(request, { timeoutMs: 15_000 });
          this.accepted(submission, execution!.id);
          if (planned.abortAfterMs !== undefined) this.aborts.push(this.abortLater(submission, deadline));
          return;
        }
        // A sync call: follow its events to the end (a keyed call repeated after a break follows from the start).
        for await (const { event } of client.executeTask(request, { timeoutMs: 60_000 })) {
          if (!event) continue;
          this.accepted(submission, event.executionId);
          if (isFinal(event.phaseInfo?.phase)) {
            submission.streamFinal = event.phaseInfo!.phase;
            return;
          }
        }
        // The stream ended without a final event: a host stopping. Ask again (or, with the id, leave it to the read-back).
        submission.retriedCalls.push("ExecuteTask ended early");
      } catch (error) {
        const code = ConnectError.from(error).code;
        if (!TRANSIENT.has(code)) {
          submission.gaveUp = `${codeName(error)}: ${ConnectError.from(error).rawMessage}`;
          return;
        }
        this.noteRetry(submission, `${planned.route === "create" ? "CreateTask" : "ExecuteTask"} ${codeName(error)}`, error);
      }
      // A direct call that broke after its id was known has been stored; the read-back finds its end.
      if (planned.route === "execute-direct" && submission.id) return;
      if (planned.route === "execute-direct") submission.directResends++;
    }
    submission.gaveUp ??= `no answer within ${this.options.submitBoundMs} ms`;
  }

  private noteRetry(submission: Submission, code: string, error: unknown): void {
    submission.retriedCalls.push(code);
    if (!this.retryMessages.has(code)) this.retryMessages.set(code, ConnectError.from(error).rawMessage);
  }

  private accepted(submission: Submission, id: string): void {
    if (submission.id && submission.id !== id) throw new Error(`execution ${submission.planned.index} answered with two ids: ${submission.id}, ${id}`);
    submission.id ??= id;
    submission.acceptedAt ??= Date.now();
  }

  private async abortLater(submission: Submission, deadline: number): Promise<void> {
    await sleep(submission.planned.abortAfterMs!);
    for (let attempt = 0; Date.now() < deadline + submission.planned.abortAfterMs!; attempt++) {
      if (attempt > 0) await sleep(Math.min(1_000, 100 * attempt));
      try {
        await this.clients.next().abortTask({ id: submission.id!, reason: "chaos suite" }, { timeoutMs: 15_000 });
        return;
      } catch (error) {
        const code = ConnectError.from(error).code;
        // Already final: the read-back says whether it ended ABORTED (an earlier try that looked failed).
        if (code === Code.FailedPrecondition) return;
        if (!TRANSIENT.has(code)) {
          submission.gaveUp = `AbortTask ${codeName(error)}: ${ConnectError.from(error).rawMessage}`;
          return;
        }
        this.noteRetry(submission, `AbortTask ${codeName(error)}`, error);
      }
    }
    submission.gaveUp ??= "AbortTask: no answer in time";
  }

  /**
   * Reads every accepted execution back until all are final or `boundMs` passes: ListTasks (the final phases,
   * page by page) on whichever host is live, then GetTask for those the list did not show final.
   */
  async readBack(submissions: Submission[], boundMs: number): Promise<void> {
    const byId = new Map(submissions.filter((s) => s.id).map((s) => [s.id!, s]));
    const deadline = Date.now() + boundMs;
    while (Date.now() < deadline) {
      try {
        let pageToken = "";
        for (let page = 0; page < 100; page++) {
          const listed = await this.clients.next().listTasks({ namespace: NAMESPACE, phases: FINAL_PHASES, pageSize: 1000, pageToken }, { timeoutMs: 30_000 });
          for (const execution of listed.executions) {
            const submission = byId.get(execution.id);
            if (submission) submission.final = execution;
          }
          pageToken = listed.nextPageToken;
          if (!pageToken) break;
        }
      } catch {
        // A host in trouble: the next round asks another.
      }
      if ([...byId.values()].every((s) => isFinal(s.final?.phaseInfo?.phase))) return;
      await sleep(1_000);
    }
    for (const submission of byId.values()) {
      if (isFinal(submission.final?.phaseInfo?.phase)) continue;
      try {
        const { execution } = await this.clients.next().getTask({ id: submission.id! }, { timeoutMs: 10_000 });
        submission.final = execution;
      } catch (error) {
        submission.gaveUp ??= `GetTask ${codeName(error)}: ${ConnectError.from(error).rawMessage}`;
      }
    }
  }
}
