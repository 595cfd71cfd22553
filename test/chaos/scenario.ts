// One chaos scenario from start to end: a NATS cluster (or a single node), the fleet on it, the seeded workload
// submitted at a steady pace, the seeded faults at their moments, then the gate opened, everything read back and
// counted: lost executions, duplicate effective Creates, wrong terminal phases, takeover times, each host's share.
import { rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Phase } from "@plugin-bridge/protocol/pluginbridge/v1/task_pb.js";
import { KITS } from "../helpers/kits.js";
import { tempDir } from "../helpers/processes.js";
import { duplicateCreates, instanceShares, nextCallDelays, percentile, readAudit, type AuditLine } from "./audit.js";
import { startNatsCluster, type NatsCluster, type NatsNode } from "./cluster.js";
import { Driver, isFinal, type Submission } from "./driver.js";
import { startFleet, type Fleet } from "./fleet.js";
import { seededRandom, type Random } from "./random.js";
import { planWorkload, type Length, type PlannedExecution } from "./workload.js";

/**
 * cluster: SIGKILL one host, one async sidecar replica and one NATS node of three (started again after a while), each
 * at its own moment. single-nats: one NATS node under everything, SIGKILLed and started again.
 */
export type FaultPlan = "cluster" | "single-nats";

export interface ScenarioOptions {
  name: string;
  seed: number;
  faults: FaultPlan | "none";
  natsNodes: number;
  hosts: number;
  replicas: number;
  executions: number;
  length: Length;
  /** Submissions are spread over this window; the faults fall inside it. */
  windowMs: number;
  concurrency: number;
  resyncMs: number;
  ackWaitMs: number;
  /** How long the read-back may wait for every execution to end. */
  settleBoundMs: number;
  /** Called with progress lines (the suite prints them). */
  log(line: string): void;
}

export interface FaultFigures {
  fault: string;
  victim: string;
  /** Milliseconds after the first submission. */
  atMs: number;
  /** For a NATS node: how long it stayed down, and until its JetStream was current again after the restart. */
  downMs?: number;
  healthyAfterRestartMs?: number;
  /** What the node led or alone held when it was killed ("KV_pb_creates R1", "PB_WORK leader"). */
  held?: string[];
  /** The next call of each affected gated execution after the kill. */
  takeover: { measuredOn: string; executions: number; missing: number; p50Ms: number; p99Ms: number; maxMs: number };
}

export interface WrongPhase {
  index: number;
  id: string;
  shape: string;
  expected: string;
  got: string;
}

export interface ScenarioFigures {
  name: string;
  seed: number;
  executions: number;
  byRoute: Record<string, number>;
  accepted: number;
  /** Submitted but never accepted, or accepted and not final (or not readable) at the end. */
  lost: Array<{ index: number; shape: string; id?: string; why: string }>;
  duplicateCreates: Array<{ attempt: string; instances: string[] }>;
  wrongPhases: WrongPhase[];
  faults: FaultFigures[];
  hostShares: Array<{
    host: string;
    natsUrl: string;
    killed: boolean;
    /** Plugin calls the host made (plugin_bridge_plugin_call_duration_seconds_count summed; a killed host's last reading). */
    pluginCalls: number;
    /** The same, read just before the first fault. */
    pluginCallsBeforeFaults?: number;
    byOperation: Record<string, number>;
  }>;
  instanceShares: Array<{ instance: string; calls: number; byCall: Record<string, number> }>;
  retriedCalls: number;
  retriedByCode: Record<string, number>;
  /** The first message of each retried code. */
  retryMessages: Record<string, string>;
  directResends: number;
  durationMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const phaseName = (phase: Phase | undefined): string => (phase === undefined ? "none" : Phase[phase] ?? String(phase));

export async function runScenario(options: ScenarioOptions): Promise<ScenarioFigures> {
  const began = Date.now();
  const workDir = tempDir(`chaos-${options.name}`);
  const files = { gate: path.join(workDir, "gate"), never: path.join(workDir, "never") };
  // Two streams from one seed: changing the workload's size does not move the faults, and the other way round.
  const workloadRandom = seededRandom(options.seed);
  const faultRandom = seededRandom(options.seed ^ 0x5bd1e995);
  const languages = KITS.map((kit) => kit.language);
  const planned = planWorkload(options.executions, options.length, workloadRandom, languages, files, `s${options.seed}-${options.name}`);

  let cluster: NatsCluster | undefined;
  let fleet: Fleet | undefined;
  try {
    cluster = await startNatsCluster(options.natsNodes);
    fleet = await startFleet({
      natsUrls: cluster.nodes.map((node) => node.url),
      hosts: options.hosts,
      replicas: options.replicas,
      natsReplicas: options.natsNodes >= 3 ? 3 : 1,
      ackWaitMs: options.ackWaitMs,
      resyncMs: options.resyncMs,
      workDir,
    });
    options.log(`${options.name}: fleet up after ${Date.now() - began} ms (${fleet.hosts.length} hosts, ${fleet.sidecars.length} sidecars, ${cluster.nodes.length} NATS nodes)`);

    const driver = new Driver({ liveHosts: () => fleet!.liveHosts(), windowMs: options.windowMs, concurrency: options.concurrency, submitBoundMs: 120_000 });
    const start = Date.now();
    const plannedFaults = planFaults(options, faultRandom, cluster, fleet, start);
    options.log(`${options.name}: faults at ${plannedFaults.map((fault) => `${fault.offsetMs} ms`).join(", ") || "none"} (CHAOS_SEED=${options.seed})`);
    const at = (offsetMs: number): Promise<void> => sleep(Math.max(0, start + offsetMs - Date.now()));
    // Each host's share of a fleet with nothing broken yet: read just before the first fault.
    const firstFault = Math.min(...plannedFaults.map((fault) => fault.offsetMs));
    const beforeFaults = Number.isFinite(firstFault)
      ? at(firstFault - 500).then(async () => {
          await fleet!.scrape();
          return new Map(fleet!.hosts.map((host) => [host.name, sum(host.calls)]));
        })
      : undefined;
    const faultsDone = Promise.all(
      plannedFaults.map(async (fault) => {
        await at(fault.offsetMs);
        return await fault.run();
      }),
    );
    const submissions = await driver.submitAll(planned);
    const faults = await faultsDone;
    const sharesBeforeFaults = await beforeFaults;
    options.log(`${options.name}: submitted in ${Date.now() - start} ms; faults: ${faults.map((f) => `${f.fault} ${f.victim} at ${f.at - start} ms`).join(", ") || "none"}`);

    // Gated executions keep polling until every takeover has had time to show, then they may end.
    await sleep(options.ackWaitMs + 2 * options.resyncMs + 1_000);
    writeFileSync(files.gate, "open");
    await driver.readBack(submissions, options.settleBoundMs);
    await fleet.scrape();
    options.log(`${options.name}: read back after ${Date.now() - start} ms`);

    const audit = readAudit(fleet.sidecars.map((sidecar) => sidecar.auditFile));
    const figures = count(options, planned, submissions, audit, fleet, sharesBeforeFaults);
    figures.retryMessages = Object.fromEntries(driver.retryMessages);
    figures.faults = faults.map((fault) => measureTakeover(fault, audit, submissions, options, start));
    figures.durationMs = Date.now() - began;
    return figures;
  } finally {
    await fleet?.stop();
    await cluster?.stop();
    // CHAOS_KEEP=1 keeps the audit files and every process's output for a closer look.
    for (const member of [...(fleet?.hosts ?? []), ...(fleet?.sidecars ?? [])]) {
      writeFileSync(path.join(workDir, `${"name" in member ? member.name : member.instanceId}.out`), member.process.output());
    }
    if (process.env.CHAOS_KEEP === "1") options.log(`${options.name}: kept ${workDir}`);
    else rmSync(workDir, { recursive: true, force: true });
  }
}

interface FaultMoment {
  fault: string;
  victim: string;
  at: number;
  downMs?: number;
  healthyAfterRestartMs?: number;
  held?: string[];
  /** Which gated executions the fault affects, by their last call before it. */
  affected?: (last: AuditLine) => boolean;
}

interface PlannedFault {
  offsetMs: number;
  /** Carries the fault out (called at its moment). */
  run(): Promise<FaultMoment>;
}

/** Plans the scenario's faults from the seed: each at its own moment inside the window, relative to `start`. */
function planFaults(options: ScenarioOptions, random: Random, cluster: NatsCluster, fleet: Fleet, start: number): PlannedFault[] {
  const moment = (): number => Math.round(options.windowMs * (0.15 + 0.6 * random.next()));
  const natsOutage = (offsetMs: number, downMs: number, tieBreak: number): PlannedFault => ({
    offsetMs,
    async run() {
      const { node, held } = await worstNode(cluster, tieBreak);
      const killedAt = Date.now();
      await node.kill("SIGKILL");
      options.log(`${options.name}: SIGKILL NATS ${node.name} (${node.url}) at ${killedAt - start} ms, down for ${downMs} ms; it held ${held.join(", ") || "nothing"}`);
      await sleep(downMs);
      const restartedAt = Date.now();
      await node.restart();
      const healthy = await node.healthy(60_000);
      return {
        fault: "SIGKILL NATS node, restarted",
        victim: node.name,
        at: killedAt,
        downMs,
        held,
        ...(healthy && { healthyAfterRestartMs: Date.now() - restartedAt }),
      };
    },
  });

  if (options.faults === "none") return [];
  if (options.faults === "single-nats") return [natsOutage(moment(), random.int(2_000, 6_000), random.next())];
  const hostVictim = random.pick(fleet.hosts);
  // An async replica: its executions keep calling it until it dies, so their move to the other replica shows.
  const sidecarVictim = random.pick(fleet.sidecars.filter((sidecar) => sidecar.kind === "async"));
  return [
    {
      offsetMs: moment(),
      async run() {
        const killedAt = Date.now();
        hostVictim.alive = false;
        hostVictim.process.child.kill("SIGKILL");
        await hostVictim.process.exited;
        options.log(`${options.name}: SIGKILL ${hostVictim.name} at ${killedAt - start} ms`);
        return { fault: "SIGKILL host", victim: hostVictim.name, at: killedAt };
      },
    },
    {
      offsetMs: moment(),
      async run() {
        const killedAt = Date.now();
        sidecarVictim.alive = false;
        sidecarVictim.process.child.kill("SIGKILL");
        await sidecarVictim.process.exited;
        options.log(`${options.name}: SIGKILL sidecar ${sidecarVictim.instanceId} at ${killedAt - start} ms`);
        return { fault: "SIGKILL sidecar replica", victim: sidecarVictim.instanceId, at: killedAt, affected: (last) => last.instance === sidecarVictim.instanceId };
      },
    },
    natsOutage(moment(), random.int(4_000, 10_000), random.next()),
  ];
}

/**
 * The node whose loss hurts most, as its /jsz says at that moment: one holding a stream with no other copy first,
 * then the one leading the work consumer (the scheduler every host pulls from), then the most stream leaders; a
 * tie goes by the seed. Leaders move between runs, so a seeded index would hit a different role each time.
 */
async function worstNode(cluster: NatsCluster, tieBreak: number): Promise<{ node: NatsNode; held: string[] }> {
  const live = cluster.nodes.filter((node) => node.running());
  const holdings = await Promise.all(live.map((node) => node.holdings()));
  const weight = (held: string[]): number =>
    held.reduce((sum, item) => sum + (item.endsWith(" R1") ? 100 : item.includes("/") ? 10 : 1), 0);
  const best = Math.max(...holdings.map(weight));
  const candidates = live.map((node, index) => ({ node, held: holdings[index]! })).filter(({ held }) => weight(held) === best);
  return candidates[Math.floor(tieBreak * candidates.length)]!;
}

function measureTakeover(fault: FaultMoment, audit: AuditLine[], submissions: Submission[], options: ScenarioOptions, start: number): FaultFigures {
  const gated = new Set(submissions.filter((s) => s.planned.shape === "async gated" && s.id).map((s) => s.id!));
  const delays = nextCallDelays(audit, fault.at, gated, {
    // Polled within two resync intervals before the kill (plus a step's own time under load).
    lookbackMs: 2 * options.resyncMs + 1_000,
    boundMs: 120_000,
    ...(fault.affected && { affected: fault.affected }),
  });
  return {
    fault: fault.fault,
    victim: fault.victim,
    atMs: fault.at - start,
    ...(fault.downMs !== undefined && { downMs: fault.downMs }),
    ...(fault.healthyAfterRestartMs !== undefined && { healthyAfterRestartMs: fault.healthyAfterRestartMs }),
    ...(fault.held && { held: fault.held }),
    takeover: {
      measuredOn: fault.affected ? `gated executions last called on ${fault.victim}` : "gated executions polled before the kill",
      executions: delays.executions,
      missing: delays.missing,
      p50Ms: percentile(delays.delaysMs, 50),
      p99Ms: percentile(delays.delaysMs, 99),
      maxMs: delays.delaysMs.at(-1) ?? Number.NaN,
    },
  };
}

const sum = (counts: Map<string, number>): number => [...counts.values()].reduce((total, n) => total + n, 0);

function count(
  options: ScenarioOptions,
  planned: PlannedExecution[],
  submissions: Submission[],
  audit: AuditLine[],
  fleet: Fleet,
  sharesBeforeFaults: Map<string, number> | undefined,
): ScenarioFigures {
  const lost: ScenarioFigures["lost"] = [];
  const wrongPhases: WrongPhase[] = [];
  for (const submission of submissions) {
    const { planned: plan } = submission;
    if (!submission.id) {
      lost.push({ index: plan.index, shape: plan.shape, why: `never accepted: ${submission.gaveUp ?? "unknown"}` });
      continue;
    }
    const final = submission.final;
    if (!final || !isFinal(final.phaseInfo?.phase)) {
      lost.push({ index: plan.index, shape: plan.shape, id: submission.id, why: final ? `still ${phaseName(final.phaseInfo?.phase)} "${final.phaseInfo?.reason}"` : `not readable: ${submission.gaveUp ?? "never listed"}` });
      continue;
    }
    const got = { phase: final.phaseInfo!.phase, code: final.phaseInfo?.error?.code, attempt: final.attempt };
    const { expected } = plan;
    if (got.phase !== expected.phase || (expected.code !== undefined && got.code !== expected.code) || got.attempt !== expected.attempt) {
      wrongPhases.push({
        index: plan.index,
        id: submission.id,
        shape: plan.shape,
        expected: `${phaseName(expected.phase)}${expected.code ? ` ${expected.code}` : ""} attempt ${expected.attempt}`,
        got: `${phaseName(got.phase)}${got.code ? ` ${got.code}` : ""} attempt ${got.attempt}: ${final.phaseInfo?.reason}`,
      });
    }
    if (submission.streamFinal !== undefined && submission.streamFinal !== got.phase) {
      wrongPhases.push({ index: plan.index, id: submission.id, shape: plan.shape, expected: `stream and record to agree`, got: `stream ${phaseName(submission.streamFinal)}, record ${phaseName(got.phase)}` });
    }
  }
  const byRoute: Record<string, number> = {};
  for (const plan of planned) byRoute[plan.route] = (byRoute[plan.route] ?? 0) + 1;
  const retriedByCode: Record<string, number> = {};
  for (const submission of submissions) for (const code of submission.retriedCalls) retriedByCode[code] = (retriedByCode[code] ?? 0) + 1;
  return {
    name: options.name,
    seed: options.seed,
    executions: planned.length,
    byRoute,
    accepted: submissions.filter((s) => s.id).length,
    lost,
    duplicateCreates: duplicateCreates(audit),
    wrongPhases,
    faults: [],
    hostShares: fleet.hosts.map((host) => ({
      host: host.name,
      natsUrl: host.natsUrl,
      killed: !host.alive,
      pluginCalls: sum(host.calls),
      ...(sharesBeforeFaults && { pluginCallsBeforeFaults: sharesBeforeFaults.get(host.name) ?? 0 }),
      byOperation: Object.fromEntries([...host.calls].sort()),
    })),
    instanceShares: [...instanceShares(audit)].sort(([a], [b]) => a.localeCompare(b)).map(([instance, calls]) => ({
      instance,
      calls: sum(calls),
      byCall: Object.fromEntries(calls),
    })),
    retriedCalls: submissions.reduce((sum, s) => sum + s.retriedCalls.length, 0),
    retriedByCode,
    retryMessages: {},
    directResends: submissions.reduce((sum, s) => sum + s.directResends, 0),
    durationMs: 0,
  };
}
