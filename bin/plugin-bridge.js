#!/usr/bin/env node
// Runs the TypeScript sources through tsx's loader: the package ships no build step (Node 20 cannot strip types).
import { register } from "tsx/esm/api";

register();
await import("../src/cli/main.ts");
