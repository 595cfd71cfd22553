// Reads V8 .cpuprofile files (node --cpu-prof) and says where the time went: by area (package or source
// folder) and by function, self time, idle left out.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileSummary {
  file: string;
  wallSeconds: number;
  busySeconds: number;
  /** Share of busy (non-idle) self time per area, largest first. */
  areas: Array<{ area: string; share: number }>;
  /** Largest self-time functions. */
  functions: Array<{ fn: string; share: number }>;
}

/** Where a frame's code lives: an npm package, a project folder, node's internals, or V8's pseudo frames. */
function areaOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith("(") ? functionName : "(native)";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith("node:")) return `node:${url.slice(5).split("/")[1] ?? url.slice(5)}`;
  const project = /\/(src|gen|sidecars|bench)\/(.*)$/.exec(url);
  if (project) {
    const [, top, rest] = project;
    const folder = rest!.split("/");
    return folder.length > 1 ? `${top}/${folder[0]}` : `${top}/${folder[0]}`;
  }
  return url;
}

export function summarizeProfile(file: string, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<number, number>();
  if (profile.samples && profile.timeDeltas) {
    for (let i = 0; i < profile.samples.length; i++) {
      const id = profile.samples[i]!;
      self.set(id, (self.get(id) ?? 0) + Math.max(0, profile.timeDeltas[i] ?? 0));
    }
  } else {
    for (const node of profile.nodes) self.set(node.id, node.hitCount ?? 0);
  }
  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  let busy = 0;
  for (const [id, time] of self) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === "(idle)") continue;
    busy += time;
    const area = areaOf(url, functionName);
    areas.set(area, (areas.get(area) ?? 0) + time);
    const name = `${functionName || "(anonymous)"} ${url ? `${url.replace(/^file:\/\/.*?\/(node_modules|src|gen|sidecars)\//, "$1/")}:${lineNumber + 1}` : ""}`.trim();
    functions.set(name, (functions.get(name) ?? 0) + time);
  }
  const share = (time: number): number => Math.round((time / Math.max(1, busy)) * 1000) / 10;
  return {
    file,
    wallSeconds: Math.round((profile.endTime - profile.startTime) / 1e4) / 100,
    busySeconds: Math.round(busy / 1e4) / 100,
    areas: [...areas].sort((a, b) => b[1] - a[1]).slice(0, top).map(([area, time]) => ({ area, share: share(time) })),
    functions: [...functions].sort((a, b) => b[1] - a[1]).slice(0, top).map(([fn, time]) => ({ fn, share: share(time) })),
  };
}

/** Profiles in `dir` written after `sinceMs` (file mtime order). */
export function newProfiles(dir: string, before: ReadonlySet<string>): string[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((name) => name.endsWith(".cpuprofile"));
  } catch {
    return [];
  }
  return files.filter((name) => !before.has(name)).map((name) => path.join(dir, name));
}

export function existingProfiles(dir: string): Set<string> {
  try {
    return new Set(readdirSync(dir).filter((name) => name.endsWith(".cpuprofile")));
  } catch {
    return new Set();
  }
}

export function formatProfile(summary: ProfileSummary): string {
  return [
    `  profile ${path.basename(summary.file)}: ${summary.busySeconds} s busy of ${summary.wallSeconds} s`,
    `    by area: ${summary.areas.slice(0, 10).map((a) => `${a.area} ${a.share}%`).join(", ")}`,
    ...summary.functions.slice(0, 10).map((f) => `    ${f.share.toFixed(1).padStart(5)}%  ${f.fn}`),
  ].join("\n");
}
