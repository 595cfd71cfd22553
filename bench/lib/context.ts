// What run.ts hands every benchmark: the mode, the options, a logger, and stopping a host so that its CPU
// profile (with --profile) is written and summarized.
import type { BenchHost, BenchOptions } from "./processes.js";
import { existingProfiles, formatProfile, newProfiles, summarizeProfile, type ProfileSummary } from "./profile.js";
import type { BenchResult } from "./report.js";

export type Mode = "quick" | "full";

export interface BenchContext {
  mode: Mode;
  options: BenchOptions;
  log(message: string): void;
}

/** Stops a host with SIGTERM (its profile is written on exit) and adds the profile's summary to `result`. */
export async function stopHost(host: BenchHost, ctx: BenchContext, result: BenchResult, label: string): Promise<void> {
  const before = existingProfiles(ctx.options.profileDir);
  const code = await host.stop("SIGTERM", 30_000);
  if (code !== 0 && code !== null) result.warnings.push(`${label}: host exited with code ${code} on SIGTERM`);
  if (!ctx.options.profile) return;
  const profiles: ProfileSummary[] = [];
  for (const file of newProfiles(ctx.options.profileDir, before)) {
    try {
      const summary = summarizeProfile(file);
      profiles.push(summary);
      ctx.log(`${label}:\n${formatProfile(summary)}`);
    } catch (error) {
      result.warnings.push(`${label}: cannot read profile ${file}: ${(error as Error).message}`);
    }
  }
  const existing = (result.details.profiles as Record<string, ProfileSummary[]> | undefined) ?? {};
  existing[label] = profiles;
  result.details.profiles = existing;
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message.split("\n")[0]! : String(error);
}
