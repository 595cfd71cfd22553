// SidecarService: the host's supervised sidecars for operators (`plugin-bridge sidecars ls`, `plugins ls` health,
// `plugin-bridge upgrade <sidecar>`). An upgrade takes the sidecar's entry from the configuration file as it reads
// now, so an operator edits the file (a new image, binary or version) and upgrades one sidecar without touching
// the others.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  ReplicaState,
  SupervisedReplicaSchema,
  SupervisedSidecarSchema,
  type SidecarService,
  type SupervisedReplica,
  type SupervisedSidecar,
} from "@plugin-bridge/protocol/pluginbridge/v1/sidecar_service_pb.js";
import type { SidecarSpec } from "../config-file.js";
import type { ReplicaStatus } from "../supervisor/sidecar-process.js";
import { UnknownSidecarError, UpgradeFailedError, UpgradeUnderWayError, type Supervisor } from "../supervisor/supervisor.js";
import { invalid } from "./validation.js";

const NAME_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

const STATES: Record<ReplicaStatus["state"], ReplicaState> = {
  starting: ReplicaState.STARTING,
  serving: ReplicaState.SERVING,
  "backing-off": ReplicaState.BACKING_OFF,
  "gave-up": ReplicaState.GAVE_UP,
  stopped: ReplicaState.STOPPED,
};

export function replicaView(status: ReplicaStatus): SupervisedReplica {
  return create(SupervisedReplicaSchema, {
    instanceId: status.instanceId,
    endpoint: status.endpoint,
    state: STATES[status.state],
    pid: status.pid ?? 0,
    restarts: status.restarts,
    lastExit: status.lastExit,
  });
}

function sidecarView(spec: SidecarSpec, replicas: ReplicaStatus[]): SupervisedSidecar {
  return create(SupervisedSidecarSchema, { name: spec.name, command: [spec.command, ...spec.args], replicas: replicas.map(replicaView) });
}

export interface SidecarServiceDeps {
  supervisor: () => Supervisor | undefined;
  /**
   * The sidecars as the configuration reads now; throws (with the key's path) when it does not load. A host
   * without a configuration file gives the specs it runs.
   */
  readSidecars: () => readonly SidecarSpec[];
}

export function createSidecarService(deps: SidecarServiceDeps): ServiceImpl<typeof SidecarService> {
  return {
    listSidecars() {
      return { sidecars: (deps.supervisor()?.sidecars() ?? []).map(({ spec, replicas }) => sidecarView(spec, replicas)) };
    },

    async upgradeSidecar(request) {
      if (!NAME_PATTERN.test(request.name)) throw invalid("name", "must be 1-128 letters, digits, '_' or '-'");
      const supervisor = deps.supervisor();
      if (!supervisor?.specOf(request.name)) {
        throw new ConnectError(new UnknownSidecarError(request.name, supervisor?.sidecars().map(({ spec }) => spec.name) ?? []).message, Code.NotFound);
      }
      let specs: readonly SidecarSpec[];
      try {
        specs = deps.readSidecars();
      } catch (error) {
        throw new ConnectError(`the configuration does not load: ${error instanceof Error ? error.message : String(error)}`, Code.FailedPrecondition);
      }
      const spec = specs.find((candidate) => candidate.name === request.name);
      if (!spec) throw new ConnectError(`the configuration no longer names sidecar "${request.name}": remove it with a reload (SIGHUP)`, Code.FailedPrecondition);
      try {
        const retired = await supervisor.upgrade(spec);
        const now = supervisor.sidecars().find((sidecar) => sidecar.spec.name === request.name)!;
        return { sidecar: sidecarView(now.spec, now.replicas), retired: retired.map(replicaView) };
      } catch (error) {
        if (error instanceof UpgradeUnderWayError) throw new ConnectError(error.message, Code.Aborted);
        if (error instanceof UpgradeFailedError) throw new ConnectError(error.message, Code.FailedPrecondition);
        if (error instanceof UnknownSidecarError) throw new ConnectError(error.message, Code.NotFound);
        throw error;
      }
    },
  };
}
