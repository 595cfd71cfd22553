import { defineConfig } from "vitest/config";

// Tests that start processes (nats-server, hosts, sidecars) live under test/; unit tests sit beside code.
export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts", "sidecars/typescript/test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration files each start their own servers; two cores do not gain from more parallel files.
    maxWorkers: 2,
    pool: "forks",
  },
});
