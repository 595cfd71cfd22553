"""The ``sql`` plugin, after Athena or BigQuery query jobs: one SQLite query run in a worker thread.

An async plugin. Create checks the spec and starts the query in a thread of this process (the resource meta is
the query's id); Get reports RUNNING until the worker is done, then SUCCESS with the rows or PERMANENT_FAILURE
(kind USER) for a SQL error; Delete interrupts the query (``sqlite3.Connection.interrupt()``) and waits briefly
for the worker to stop.

The worker lives in the sidecar process, so a restarted sidecar no longer knows the queries its predecessor
started: Get of an unknown query id answers RETRYABLE_FAILURE ``QueryLost`` (kind SYSTEM), and the host starts a
new attempt (if the task has retries left), which runs the query again.
"""

from __future__ import annotations

import asyncio
import base64
import os
import pathlib
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import grpc
from google.protobuf import json_format

from pluginbridge.plugins.sql.v1.sql_pb2 import SqlQuery

from ... import (
    AsyncPlugin,
    ErrorKind,
    PhaseResult,
    PluginContext,
    PluginError,
    Properties,
    TaskType,
    get_logger,
    phase_permanent_failure,
    phase_retryable_failure,
    phase_running,
    phase_success,
)

DEFAULT_MAX_ROWS = 10_000
#: How long a finished query's result is kept for Gets that come again (a host that lost its write retries).
KEEP_FINISHED_SECONDS = 15 * 60
#: How long Delete waits for an interrupted worker to stop before answering anyway.
DELETE_WAIT_SECONDS = 5.0

log = get_logger("sql")


class TooManyRows(Exception):
    pass


@dataclass
class Query:
    """One query and its worker's outcome."""

    id: str
    database: str
    sql: str
    parameters: Dict[str, Any]
    max_rows: int
    done: threading.Event = field(default_factory=threading.Event)
    connection: Optional[sqlite3.Connection] = None
    columns: List[str] = field(default_factory=list)
    rows: List[List[Any]] = field(default_factory=list)
    error: Optional[str] = None
    error_code: str = ""
    cancelled: bool = False
    finished_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _cell(value: Any) -> Any:
    """A SQLite value as JSON: BLOBs become base64 text."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def _run(query: Query) -> None:
    """The worker: opens the database (it must exist), runs the statement, keeps at most max_rows rows."""
    try:
        uri = pathlib.Path(query.database).as_uri() + "?mode=rw"
        connection = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
        with query.lock:
            query.connection = connection
            cancelled = query.cancelled
        try:
            if cancelled:
                raise sqlite3.OperationalError("interrupted")
            cursor = connection.execute(query.sql, query.parameters)
            query.columns = [d[0] for d in cursor.description] if cursor.description else []
            while True:
                batch = cursor.fetchmany(500)
                if not batch:
                    break
                query.rows.extend([_cell(v) for v in row] for row in batch)
                if len(query.rows) > query.max_rows:
                    raise TooManyRows(f"the query yields more than {query.max_rows} rows")
        finally:
            with query.lock:
                query.connection = None
            connection.close()
    except TooManyRows as error:
        query.rows = []
        query.error, query.error_code = str(error), "TooManyRows"
    except sqlite3.Error as error:
        query.rows = []
        query.error, query.error_code = str(error), "SqlError"
    except Exception as error:  # noqa: BLE001 - reported by Get, never lost in a thread
        query.rows = []
        query.error, query.error_code = f"{type(error).__name__}: {error}", "WorkerError"
    finally:
        query.finished_at = time.time()
        log.info(
            "query finished",
            query=query.id,
            outcome="cancelled" if query.cancelled else ("error" if query.error else "ok"),
            error=query.error,
        )
        query.done.set()


class QueryRunner:
    """The queries this process runs, by id."""

    def __init__(self) -> None:
        self._queries: Dict[str, Query] = {}

    def start(self, spec: SqlQuery) -> str:
        if not spec.database or not os.path.isabs(spec.database):
            raise PluginError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"template.custom.database: {spec.database!r} is not an absolute path",
            )
        if not spec.query.strip():
            raise PluginError(grpc.StatusCode.INVALID_ARGUMENT, "template.custom.query: must not be empty")
        self._evict()
        parameters = json_format.MessageToDict(spec.parameters) if spec.HasField("parameters") else {}
        # JSON numbers arrive as floats (Struct has no integers): 3.0 binds as 3, so LIMIT :n works.
        parameters = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in parameters.items()}
        query = Query(
            id=uuid.uuid4().hex,
            database=spec.database,
            sql=spec.query,
            parameters=parameters,
            max_rows=spec.max_rows or DEFAULT_MAX_ROWS,
        )
        self._queries[query.id] = query
        threading.Thread(target=_run, args=(query,), name=f"sql-{query.id[:8]}", daemon=True).start()
        log.info("query started", query=query.id, database=query.database)
        return query.id

    def status(self, query_id: str) -> PhaseResult:
        query = self._queries.get(query_id)
        if query is None:
            # Started by an earlier process of this sidecar (or another instance): its worker is gone.
            return phase_retryable_failure(
                "QueryLost",
                f"query {query_id} is unknown to this sidecar (it restarted, or another instance ran it); "
                "a new attempt runs it again",
                ErrorKind.ERROR_KIND_SYSTEM,
            )
        if not query.done.is_set():
            return phase_running("running", custom_info={"queryId": query.id})
        if query.cancelled:
            return phase_permanent_failure("Cancelled", "the query was cancelled", ErrorKind.ERROR_KIND_USER)
        if query.error is not None:
            return phase_permanent_failure(query.error_code, query.error, ErrorKind.ERROR_KIND_USER)
        return phase_success({"columns": query.columns, "rows": query.rows, "rowCount": len(query.rows)})

    async def cancel(self, query_id: str) -> None:
        query = self._queries.pop(query_id, None)
        if query is None:
            return  # finished and evicted, or never ours: nothing left to stop
        with query.lock:
            query.cancelled = True
            connection = query.connection
        if connection is not None:
            connection.interrupt()
        # Wait (bounded, off the event loop) so "deleted" means the worker has stopped.
        stopped = await asyncio.get_running_loop().run_in_executor(None, query.done.wait, DELETE_WAIT_SECONDS)
        log.info("query deleted", query=query_id, workerStopped=stopped)

    def _evict(self) -> None:
        cutoff = time.time() - KEEP_FINISHED_SECONDS
        for query_id in [q.id for q in self._queries.values() if q.done.is_set() and q.finished_at < cutoff]:
            self._queries.pop(query_id, None)


def build_plugin(runner: Optional[QueryRunner] = None) -> AsyncPlugin:
    runner = runner or QueryRunner()

    async def create(ctx: PluginContext[SqlQuery]) -> Dict[str, str]:
        return {"queryId": runner.start(ctx.spec)}

    async def get(ctx: PluginContext[SqlQuery], meta: Dict[str, str]) -> PhaseResult:
        return runner.status(str((meta or {}).get("queryId", "")))

    async def delete(ctx: PluginContext[SqlQuery], meta: Dict[str, str]) -> None:
        await runner.cancel(str((meta or {}).get("queryId", "")))

    return AsyncPlugin(
        name="sql",
        version="1.0.0",
        task_types=[TaskType("sql", 1)],
        specification=SqlQuery,
        properties=Properties(resync_interval=0.5),
        create=create,
        get=get,
        delete=delete,
    )
