// Runs the `http` plugin as a sidecar: node_modules/.bin/tsx sidecars/typescript/examples/http/main.ts
import { serve } from "@plugin-bridge/kit";
import { httpPlugin } from "./plugin.js";

await serve(httpPlugin);
