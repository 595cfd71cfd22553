"""The SDK half of the kit: submit tasks to a plugin-bridge host and follow them.

    from plugin_bridge.sdk import BridgeClient, task_template
    from pluginbridge.plugins.sql.v1.sql_pb2 import SqlQuery

    with BridgeClient("http://127.0.0.1:8080") as client:
        event = client.run(task_template(SqlQuery(database="/tmp/db.sqlite", query="select 1"), "sql", 1))

``client.run(..., validate=True)`` checks ``custom`` against the plugin's specification first;
``print(client.schema("sql", 1))`` shows what that specification asks for.
"""

from .client import BridgeClient, grpc_target
from .errors import BridgeError
from .specification import Specification
from .template import spec_to_struct, task_template

__all__ = ["BridgeClient", "BridgeError", "Specification", "grpc_target", "task_template", "spec_to_struct"]
