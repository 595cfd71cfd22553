// `npm run build`: the host as one JavaScript file, dist/plugin-bridge.mjs, for operators and the benchmarks.
// Running from source (bin/plugin-bridge.js) loads ~300 modules through tsx's loader, which runs in a worker
// thread of its own; the bundle starts faster and uses less memory (docs/benchmarks.md has the figures).
import { build } from "esbuild";
import path from "node:path";
import { fileURLToPath } from "node:url";

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const BUNDLE = path.join(projectRoot, "dist", "plugin-bridge.mjs");

export async function buildHost(): Promise<string> {
  await build({
    entryPoints: [path.join(projectRoot, "src", "cli", "main.ts")],
    outfile: BUNDLE,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    sourcemap: "linked",
    logLevel: "warning",
    // CommonJS dependencies (grpc-js) call require(); an ES module has none unless it makes one.
    banner: { js: "import { createRequire as pluginBridgeCreateRequire } from 'node:module'; const require = pluginBridgeCreateRequire(import.meta.url);" },
  });
  return BUNDLE;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.stdout.write(`built ${path.relative(process.cwd(), await buildHost())}\n`);
}
