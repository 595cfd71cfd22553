// Conversions between protobuf well-known times and milliseconds, with the defaults the host applies.
import type { Duration, Timestamp } from "@bufbuild/protobuf/wkt";

export function timestampMs(timestamp: Timestamp | undefined): number {
  if (!timestamp) return 0;
  return Number(timestamp.seconds) * 1000 + Math.floor(timestamp.nanos / 1_000_000);
}

/** A duration in ms, or `fallback` when unset or not positive. */
export function durationMs(duration: Duration | undefined, fallback: number): number {
  if (!duration) return fallback;
  const ms = Number(duration.seconds) * 1000 + Math.floor(duration.nanos / 1_000_000);
  return ms > 0 ? ms : fallback;
}
