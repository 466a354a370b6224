"""Tenant API reads that may be answered from snapshots (sparkexport/snapshots.py)."""
from sparkexport import snapshots
from tenants.changes import tenant_scope


class SnapshotReadsMixin:
    """A GET view whose documents may come from snapshots.

    Before authentication, the tokens of the tenant scope and of the view's own
    `snapshot_scopes` are read once (from this process's mirror of them); they are kept on
    the request for the authenticator and the view. A client that sends
    `Cache-Control: no-cache` is answered from the database. Only job creation is
    rate-limited, so these views skip the throttle.
    """

    throttle_classes = ()

    def snapshot_scopes(self, **kwargs) -> tuple[str, ...]:
        return ()

    def initial(self, request, *args, **kwargs):
        request.snapshot_tokens = None
        if request.method == "GET" and "no-cache" not in request.META.get("HTTP_CACHE_CONTROL", ""):
            scopes = [tenant_scope(kwargs["tenant"]), *self.snapshot_scopes(**kwargs)]
            request.snapshot_tokens = snapshots.current_tokens(scopes)
        super().initial(request, *args, **kwargs)


def request_tokens(request, *scopes: str) -> tuple | None:
    """The tokens these scopes had when the request began, or None if any is unknown."""
    tokens = getattr(request, "snapshot_tokens", None)
    if tokens is None:
        return None
    values = tuple(tokens.get(scope) for scope in scopes)
    return None if None in values else values


def request_tokens_start(request, *scopes: str) -> None:
    """After a database read that proved the scopes readable: start the tokens they lack."""
    tokens = getattr(request, "snapshot_tokens", None)
    if tokens is not None:
        missing = [scope for scope in scopes if tokens.get(scope) is None]
        if missing:
            snapshots.tokens_start(missing)
