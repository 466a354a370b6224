"""Log lines that say which request and which job they belong to: readable text by default,
one JSON object per line with LOG_FORMAT=json.

The request middleware (sparkexport/request_logs.py) and the RQ entry points open a
`log_context`; every line logged inside it, by any logger, carries its fields. Formatters
print a fixed set of fields, never arbitrary `extra` attributes: Django attaches the request
object to some records, and its repr holds the query string, where download links keep
their token.
"""
import json
import logging
import re
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone

CONTEXT_FIELDS = ("request_id", "tenant", "job_id", "correlation_id")
# What a line may add with `extra=`: the request line's and the job events' fields.
EVENT_FIELDS = ("event", "method", "path", "view", "status", "duration_ms", "kind", "job_status", "code",
                "package_bytes")
CONTEXT_VALUE_LIMIT = 200

_context: ContextVar[dict | None] = ContextVar("sparkexport_log_context", default=None)
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


@contextmanager
def log_context(**fields):
    """Every line logged inside carries these fields (and those of the enclosing contexts)."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def log_context_bind(**fields) -> None:
    """Add fields to the innermost open `log_context` (the request's or the job's), once they
    are known: the tenant from the URL, the job a POST created. Outside any context, nothing."""
    current = _context.get()
    if current is not None:
        current.update(fields)


def log_context_fields() -> dict:
    """The context fields of the current request or job, None where unknown."""
    current = _context.get() or {}
    return {name: _bounded(current.get(name)) for name in CONTEXT_FIELDS}


def _bounded(value):
    if value is None:
        return None
    return str(value)[:CONTEXT_VALUE_LIMIT]


def record_fields(record: logging.LogRecord) -> dict:
    """The context fields, then the event fields the line itself carries (they win)."""
    fields = log_context_fields()
    for name in CONTEXT_FIELDS:
        if getattr(record, name, None) is not None:
            fields[name] = _bounded(getattr(record, name))
    for name in EVENT_FIELDS:
        if hasattr(record, name):
            fields[name] = getattr(record, name)
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context fields (null when
    unknown), the event's fields, and `exc` with the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **record_fields(record),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message [request_id=… tenant=… job_id=…]`, for people at a terminal."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = record_fields(record)
        known = [f"{name}={_one_line(fields[name])}" for name in CONTEXT_FIELDS if fields.get(name) is not None]
        if not known:
            return text
        first, newline, rest = text.partition("\n")
        return f"{first} [{' '.join(known)}]{newline}{rest}"


def _one_line(value) -> str:
    """A value from a URL cannot start a line of its own that looks like another log line."""
    return _CONTROL_CHARACTERS.sub(lambda match: f"\\x{ord(match.group()):02x}", str(value))
