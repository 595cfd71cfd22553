// Package kit runs a plugin-bridge backend plugin as a gRPC sidecar.
//
// A plugin author declares an [Async], [Sync] or [Core] plugin whose Plugin Specification is a generated
// protobuf message (the shape of TaskTemplate.custom), implements its methods and calls [Serve]. The kit then:
//
//   - serves pluginbridge.v1.PluginMetadataService/Describe, the AsyncPluginService, SyncPluginService or
//     CorePluginService, and grpc.health.v1.Health, with grpc-go, on a unix socket or a TCP port;
//   - decodes template.custom into the typed specification for every call (unknown fields rejected, a bad
//     field named in an INVALID_ARGUMENT), and maps errors and panics to gRPC codes the host understands;
//   - refuses with INVALID_ARGUMENT an execution id or attempt no host gives, before NATS sees it (a request
//     that does not decode is grpc-go's INTERNAL, as gRPC's status code table has it); its own messages repeat
//     at most 80 characters of the request, and every status message is cut to 2,000 characters;
//   - makes Create, and a core plugin's Finalize, run once per execution id and attempt, across retries,
//     restarts and instances, through the pb_creates KV bucket;
//   - announces the instance in the pb_plugins KV bucket once it is SERVING, and heartbeats every 3 s;
//   - connects to a NATS that requires credentials or TLS with the files it is given ([WithNATSCredentials],
//     [WithNATSTLS], PLUGIN_BRIDGE_NATS_CREDENTIALS and PLUGIN_BRIDGE_NATS_TLS_CA, _CERT and _KEY), and
//     dials again when NATS closes the connection for good;
//   - pushes a status between polls when the plugin asks ([Task.Push], [Server.Push]): a PushedStatus on
//     pb.push.<execution id> that a host applies as the next Get's or Handle's report;
//   - signs every announcement and push with the sidecar's token when it has one ([WithToken],
//     PLUGIN_BRIDGE_TOKEN and PLUGIN_BRIDGE_TOKEN_ID), so hosts can check who wrote them;
//   - traces every plugin call as an OpenTelemetry SERVER span, the child of the host's span in the call's
//     metadata, exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set (see [WithTracerProvider]);
//   - drains on SIGTERM/SIGINT: refuses new calls, turns NOT_SERVING, announces draining, lets calls in
//     flight finish (up to 30 s), withdraws the announcement and stops.
//
// It is the Go twin of the TypeScript kit in sidecars/typescript; where the host or other kits can see a
// difference (NATS names and settings, key escaping, error codes and messages) the two behave the same.
package kit
