// Limits of the public API port, in one place so operators and tests see the same numbers.

/**
 * Largest request message the public port reads. Connect's own default is ~4 GiB, which lets one
 * client make the host buffer gigabytes; 4 MiB matches gRPC's customary default message size.
 */
export const DEFAULT_READ_MAX_BYTES = 4 * 1024 * 1024;

/**
 * How long close() lets unary calls in flight finish before it cuts their connections. Long enough for
 * a CreateTask waiting on a JetStream ack, short enough for an orchestrator's termination grace period.
 */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;

/**
 * A connection must send its first bytes (an HTTP/1.1 request line or the HTTP/2 preface) within this time.
 * Before those bytes arrive neither Node server owns the socket, so none of their timeouts protect it.
 */
export const CONNECTION_PREFACE_TIMEOUT_MS = 10_000;

/**
 * After the grace period, calls still running are aborted through their signal; this is how long they get
 * to send that UNAVAILABLE before the connections are cut (a cut reads as a less useful transport error).
 */
export const ABORTED_CALLS_ANSWER_MS = 1_000;
