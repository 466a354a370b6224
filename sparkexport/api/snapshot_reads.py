"""Tenant API reads that may be answered from snapshots (sparkexport/snapshots.py)."""
from sparkexport import snapshots
from tenants.changes import tenant_scope


class SnapshotReadsMixin:
    """A GET view whose documents may come from snapshots.

    Before authentication, the token of the tenant scope is read (from this process's
    mirror of the tokens) and kept on the request; the view adds the tokens of its own
    scopes with `request_tokens` before it reads the database. A client that sends
    `Cache-Control: no-cache` is answered from the database. Only job creation is
    rate-limited, so these views skip the throttle.
    """

    throttle_classes = ()

    def initial(self, request, *args, **kwargs):
        request.snapshot_tokens = None
        if request.method == "GET" and "no-cache" not in request.META.get("HTTP_CACHE_CONTROL", ""):
            request.snapshot_tokens = snapshots.current_tokens([tenant_scope(kwargs["tenant"])])
        super().initial(request, *args, **kwargs)


def request_tokens(request, *scopes: str) -> tuple | None:
    """The tokens of these scopes, read at the latest now (before the database is), or None
    if the request does not read snapshots or any scope has no token yet."""
    tokens = getattr(request, "snapshot_tokens", None)
    if tokens is None:
        return None
    if missing := [scope for scope in scopes if scope not in tokens]:
        more = snapshots.current_tokens(missing)
        if more is None:
            return None
        tokens.update(more)
    values = tuple(tokens[scope] for scope in scopes)
    return None if None in values else values


def request_tokens_start(request, *scopes: str) -> None:
    """After a database read that proved the scopes readable: start the tokens they lack."""
    tokens = getattr(request, "snapshot_tokens", None)
    if tokens is not None:
        missing = [scope for scope in scopes if tokens.get(scope) is None]
        if missing:
            snapshots.tokens_start(missing)
