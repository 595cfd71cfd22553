// The real system the fuzzer attacks: a nats-server with JetStream, one host (`plugin-bridge serve`) that requires
// signed sidecar announcements (so a forged or mangled one must never route), and each kit's reference plugin in
// its three kinds (async, sync, core), each signing with a token of its own, all on loopback.
import { writeFileSync } from "node:fs";
import path from "node:path";
import type { PluginInstance } from "@plugin-bridge/protocol/pluginbridge/v1/plugin_pb.js";
import { SidecarAuth } from "../../src/registry/sidecar-auth.js";
import { eventually, registryClient } from "../helpers/clients.js";
import { KITS, type Kit } from "../helpers/kits.js";
import { startHost, startTestNats, tempDir, type RunningProcess, type TestHost, type TestNats } from "../helpers/processes.js";

export const KINDS = ["async", "sync", "core"] as const;
export type Kind = (typeof KINDS)[number];

/** The remote sidecar key the fuzzer signs hostile-but-authenticated announcements with; it may announce one plugin. */
export const FUZZ_SIGNER = "fuzz-signer";
export const FUZZ_SIGNED_PLUGIN = "fuzz-signed";

export interface KitSidecar {
  kit: Kit;
  kind: Kind;
  /** The plugin name and its task type: `conformance-<language>`, `conformance-sync-<language>`, … */
  type: string;
  instanceId: string;
  process: RunningProcess;
  /** As the registry lists it: its endpoint, descriptor and the bytes it was announced with. */
  instance: PluginInstance;
}

export interface Environment {
  work: string;
  nats: TestNats;
  host: TestHost;
  sidecars: KitSidecar[];
  auth: SidecarAuth;
  stop(): Promise<void>;
}

export const typeOf = (language: string, kind: Kind): string =>
  kind === "async" ? `conformance-${language}` : `conformance-${kind}-${language}`;

export async function startEnvironment(): Promise<Environment> {
  const work = tempDir("fuzz");
  const secret = "fuzz-sidecar-secret-0123456789abcdef-0123456789";
  writeFileSync(path.join(work, "sidecar.secret"), secret);
  const auth = new SidecarAuth(Buffer.from(secret), () => new Set());
  // Each kit's plugins are named after their task types.
  const typesOf = (language: string): string => KINDS.map((kind) => typeOf(language, kind)).join(", ");
  const remote = [
    ...KITS.map((kit) => `{ name: fuzz-${kit.language}, plugins: [${typesOf(kit.language)}], taskTypes: [${typesOf(kit.language)}] }`),
    `{ name: ${FUZZ_SIGNER}, plugins: [${FUZZ_SIGNED_PLUGIN}], taskTypes: [${FUZZ_SIGNED_PLUGIN}-type] }`,
  ];
  const configFile = path.join(work, "plugin-bridge.yaml");
  writeFileSync(configFile, ["auth:", "  sidecars:", "    secret: { file: sidecar.secret }", `    remote: [${remote.join(", ")}]`, ""].join("\n"));

  await Promise.all(KITS.map((kit) => kit.prepare()));
  const nats = await startTestNats();
  const started: Array<Omit<KitSidecar, "instance">> = [];
  let host: TestHost | undefined;
  const stop = async (): Promise<void> => {
    await Promise.all(started.map((sidecar) => sidecar.process.stop()));
    await host?.stop();
    await nats.stop();
  };
  try {
    host = await startHost(nats.url, { config: configFile });
    for (const kit of KITS) {
      for (const kind of KINDS) {
        const instanceId = `fuzz-${kit.language}-${kind}`;
        const process = kit.start({
          PLUGIN_BRIDGE_NATS_URL: nats.url,
          PLUGIN_BRIDGE_INSTANCE_ID: instanceId,
          PLUGIN_BRIDGE_TOKEN_ID: `fuzz-${kit.language}`,
          PLUGIN_BRIDGE_TOKEN: auth.tokenFor(`fuzz-${kit.language}`),
          ...(kind !== "async" && { CONFORMANCE_KIND: kind }),
        });
        started.push({ kit, kind, type: typeOf(kit.language, kind), instanceId, process });
      }
    }
    const registry = registryClient(host.url, "connect-binary");
    // Nine sidecars starting at once on two cores (three of them through tsx) take a while.
    const sidecars = await eventually("every reference plugin to be routed", async () => {
      const live = (await registry.listPlugins({})).plugins.flatMap((plugin) => plugin.instances);
      const routed = started.map((sidecar) => ({ ...sidecar, instance: live.find((instance) => instance.instanceId === sidecar.instanceId && !instance.draining) }));
      return routed.every((sidecar) => sidecar.instance) ? (routed as KitSidecar[]) : undefined;
    }, 1_200, 100);
    return { work, nats, host, sidecars, auth, stop };
  } catch (error) {
    // Whatever started must not outlive a failed start (nats-server is no child the helpers kill on exit).
    await stop();
    throw error;
  }
}
