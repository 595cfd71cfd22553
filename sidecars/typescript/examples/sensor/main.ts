// Runs the `sensor` plugin as a sidecar: node_modules/.bin/tsx sidecars/typescript/examples/sensor/main.ts
import { serve } from "@plugin-bridge/kit";
import { sensorPlugin } from "./plugin.js";

await serve(sensorPlugin);
