// A stand-in TaskService for transport tests only: it answers from the request, stores nothing. The real
// service lives in src/api; here we only need handlers whose answers prove which bytes arrived.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import {
  TaskService,
  TaskExecutionSchema,
  TaskEventSchema,
} from "@plugin-bridge/protocol/pluginbridge/v1/task_service_pb.js";

/** GetTask for this id waits until release() is called, to hold a unary call in flight during close(). */
export const SLOW_TASK_ID = "slow";
/** GetTask for this id waits for its signal, to outlive the shutdown grace period. */
export const STUCK_TASK_ID = "stuck";

export interface TestTaskServiceControls {
  /** Resolves when a slow or stuck GetTask has started. */
  slowCallStarted: Promise<void>;
  /** Lets the slow GetTask answer. */
  release(): void;
}

export function testTaskServiceRoutes(): { routes: (router: ConnectRouter) => void; controls: TestTaskServiceControls } {
  let markStarted!: () => void;
  const slowCallStarted = new Promise<void>((resolve) => (markStarted = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));

  const routes = (router: ConnectRouter): void => {
    // ListTasks, AbortTask and ExecuteTask are left out on purpose: connect answers them UNIMPLEMENTED.
    router.service(TaskService, {
      async getTask(request, context) {
        if (request.id === SLOW_TASK_ID) {
          markStarted();
          await released;
        }
        if (request.id === STUCK_TASK_ID) {
          markStarted();
          await new Promise<void>((resolve) => context.signal.addEventListener("abort", () => resolve()));
          throw ConnectError.from(context.signal.reason);
        }
        return { execution: create(TaskExecutionSchema, { id: request.id }) };
      },
      createTask(request) {
        if (request.template === undefined || request.template.type === "") {
          throw new ConnectError("template.type is required", Code.InvalidArgument);
        }
        return { execution: create(TaskExecutionSchema, { id: "created" }), created: true };
      },
      // One event, then wait for the end as a real watch waits for the next event: shows that a stream
      // which honours context.signal ends when the server closes.
      async *watchTask(request, context) {
        yield { event: create(TaskEventSchema, { executionId: request.id, sequence: 1n }) };
        await new Promise<void>((resolve) => {
          if (context.signal.aborted) resolve();
          context.signal.addEventListener("abort", () => resolve());
        });
        throw ConnectError.from(context.signal.reason);
      },
    });
  };
  return { routes, controls: { slowCallStarted, release } };
}
