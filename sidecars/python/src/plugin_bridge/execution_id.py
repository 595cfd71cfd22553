"""What a host's execution ids look like (``src/api/validation.ts``, ``checkExecutionId``): 1 to 64 letters,
digits, ``-`` and ``_``.

The kit puts the id in NATS names (the ``pb_creates`` keys of Create and Finalize, the ``pb.push.<id>`` subject),
so anything else is refused before NATS sees it: a 64 KiB id overflows NATS's control line, and the server drops
the connection that sent it.
"""

from __future__ import annotations

import re

_EXECUTION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

#: What a call or a push says an execution id must be, after the quoted id.
EXECUTION_ID_RULE = "1 to 64 letters, digits, '-' and '_'"


def is_execution_id(value: object) -> bool:
    """True when ``value`` is an execution id a host gives."""
    return isinstance(value, str) and _EXECUTION_ID.fullmatch(value) is not None
