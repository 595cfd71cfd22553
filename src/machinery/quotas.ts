// Resource quotas (Flyte's ResourceManager): a plugin declares how many executions may hold it at once, in total
// and per namespace; an execution takes a token before its first Create, Do or Handle and gives it back when it
// ends. Tokens live in NATS (quota-store.ts), changed by compare-and-set, so the bound holds across hosts. A token
// whose holder has ended or vanished (a host died between the end and the release) is reclaimed by whoever finds
// the quota full, so none leaks.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { QuotaHolderSchema } from "@plugin-bridge/protocol/pluginbridge/v1/coordination_pb.js";
import type { ResourceQuota } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { QuotaConflictError, type QuotaStore } from "../coordination/quota-store.js";
import type { Logger } from "../log.js";

export type Allocation = { granted: true } | { granted: false; reason: string };

/** Rounds of read, decide, compare-and-set before giving up on a busy quota (the step then comes back later). */
const ATTEMPTS = 10;
/** How often one host checks a full quota's holders for ones that ended. */
const RECLAIM_EVERY_MS = 2_000;

/** Whether a quota bounds anything at all. */
export const hasQuota = (quota: ResourceQuota | undefined): quota is ResourceQuota =>
  !!quota && (quota.total > 0 || quota.perNamespace > 0);

export class Quotas {
  private readonly lastReclaim = new Map<string, number>();

  constructor(
    private readonly store: QuotaStore,
    /** Whether an execution still runs: its record exists and is not final. */
    private readonly isRunning: (executionId: string) => Promise<boolean>,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes a token of `plugin` for the execution, or says why not; an execution that holds one keeps it. */
  async allocate(plugin: string, quota: ResourceQuota, executionId: string, namespace: string): Promise<Allocation> {
    for (let round = 0; round < ATTEMPTS; round++) {
      const { holders, revision } = await this.store.read(plugin);
      if (holders.holders[executionId]) return { granted: true };
      let full = this.fullness(holders.holders, quota, namespace);
      const reclaimed = full !== undefined && (await this.reclaim(plugin, holders.holders));
      if (reclaimed) full = this.fullness(holders.holders, quota, namespace);
      if (full) {
        // Still full: keep what was reclaimed anyway (a conflict means someone else changed it; they decide).
        if (reclaimed) await this.store.write(plugin, holders, revision).catch((error: unknown) => {
          if (!(error instanceof QuotaConflictError)) throw error;
        });
        return { granted: false, reason: full };
      }
      holders.holders[executionId] = create(QuotaHolderSchema, { namespace, allocatedAt: timestampFromDate(new Date(this.now())) });
      try {
        await this.store.write(plugin, holders, revision);
        return { granted: true };
      } catch (error) {
        if (!(error instanceof QuotaConflictError)) throw error;
      }
    }
    return { granted: false, reason: `the quota of plugin ${plugin} is changing too fast to take a token` };
  }

  /** Gives the execution's token back, if it holds one. */
  async release(plugin: string, executionId: string): Promise<void> {
    for (let round = 0; round < ATTEMPTS; round++) {
      const { holders, revision } = await this.store.read(plugin);
      if (!holders.holders[executionId]) return;
      delete holders.holders[executionId];
      try {
        await this.store.write(plugin, holders, revision);
        return;
      } catch (error) {
        if (!(error instanceof QuotaConflictError)) throw error;
      }
    }
    this.log.warn("could not release a quota token; it will be reclaimed", { plugin, execution: executionId });
  }

  /** Why the quota has no token for `namespace`, or undefined when it has one. */
  private fullness(holders: Record<string, { namespace: string }>, quota: ResourceQuota, namespace: string): string | undefined {
    const all = Object.values(holders);
    if (quota.total > 0 && all.length >= quota.total) return `all ${quota.total} tokens of the plugin's quota are taken`;
    const mine = all.filter((holder) => holder.namespace === namespace).length;
    if (quota.perNamespace > 0 && mine >= quota.perNamespace) {
      return `all ${quota.perNamespace} tokens of namespace ${namespace} in the plugin's quota are taken`;
    }
    return undefined;
  }

  /**
   * Drops, from `holders` (in place), those that ended or vanished; true if any was dropped. At most every
   * RECLAIM_EVERY_MS per plugin on this host: each check reads every holder's record. The caller's
   * compare-and-set makes the drop stick, or fails and starts over.
   */
  private async reclaim(plugin: string, holders: Record<string, unknown>): Promise<boolean> {
    const now = this.now();
    if (now - (this.lastReclaim.get(plugin) ?? 0) < RECLAIM_EVERY_MS) return false;
    this.lastReclaim.set(plugin, now);
    const ids = Object.keys(holders);
    const running = await Promise.all(ids.map((id) => this.isRunning(id)));
    const ended = ids.filter((_, index) => !running[index]);
    for (const id of ended) delete holders[id];
    if (ended.length > 0) this.log.info("reclaimed quota tokens of ended executions", { plugin, executions: ended.length });
    return ended.length > 0;
  }
}
