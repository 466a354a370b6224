"""Whether a database error is an outage (retry later: 503) or a fault of the query (a 500 to fix).

Only the database being unreachable, restarting, out of connections or busy is an outage: on
PostgreSQL the SQLSTATE classes 08 (connection exception), 53 (insufficient resources) and 57P
(operator intervention: shutdown, crash, "cannot connect now"), or an error without SQLSTATE (the
client never reached the server); on SQLite a locked, busy, unopenable or failing file. Anything
else (an expression tree too large, a statement timeout, a missing table) fails again on retry.
"""
from django.db import InterfaceError, OperationalError

OUTAGE_SQLSTATE_PREFIXES = ("08", "53", "57P")
SQLITE_OUTAGE_MESSAGES = (
    "database is locked", "database table is locked", "unable to open database file", "disk I/O error",
    "database or disk is full", "attempt to write a readonly database",
)


def is_database_outage(exc: BaseException) -> bool:
    """Whether `exc` (a Django database error) says the database is unavailable right now."""
    if isinstance(exc, InterfaceError):
        return True  # the connection is closed or broken
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    if cause is None:
        return True  # raised by Django itself about the connection
    if type(cause).__module__ == "sqlite3":
        message = str(cause)
        return any(message.startswith(prefix) for prefix in SQLITE_OUTAGE_MESSAGES)
    sqlstate = getattr(cause, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(OUTAGE_SQLSTATE_PREFIXES)
