"""Tenant API reads that may be answered from snapshots (sparkexport/snapshots/)."""
import time

from sparkexport import snapshots
from tenants.snapshot_scopes import tenant_scope


class SnapshotReadsMixin:
    """A GET view whose documents may come from snapshots.

    Before authentication, the token of the tenant scope is read (from this process's
    mirror of the tokens) and kept on the request, with the time it was read (a snapshot's
    age counts from then); the view adds the tokens of its own scopes with `request_tokens`
    before it reads the database. A client that sends
    `Cache-Control: no-cache` is answered from the database. Only job creation is
    rate-limited, so these views skip the throttle.
    """

    throttle_classes = ()

    def initial(self, request, *args, **kwargs):
        request.snapshot_tokens = None
        request.snapshot_born = time.monotonic()
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


def request_snapshot_put(request, key, tokens: tuple, value, *, weight: int = 1, credential: bool = False) -> None:
    """Keep a snapshot built by this request: its age counts from the request's first token
    read, and it belongs to the URL's tenant (for the store's fairness). A credential is kept
    at most CREDENTIAL_MAX_AGE."""
    owner = request.parser_context["kwargs"]["tenant"]
    if credential:
        snapshots.store.put_credential(key, tokens, value, born=request.snapshot_born, owner=owner)
    else:
        snapshots.store.put(key, tokens, value, born=request.snapshot_born, weight=weight, owner=owner)


def request_tokens_start(request, *scopes: str) -> None:
    """After a database read that proved the scopes readable: start the tokens they lack."""
    tokens = getattr(request, "snapshot_tokens", None)
    if tokens is not None:
        missing = [scope for scope in scopes if tokens.get(scope) is None]
        if missing:
            snapshots.tokens_start(missing)
