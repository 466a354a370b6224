"""Read-only documents served from process memory while Redis says they are current.

A status poll that authenticates and reads a job costs a few SQL queries, several times what
the rest of the request costs. So the documents that polls read are kept in each server
process as snapshots, each tagged with the change tokens of the scopes it depends on (a
tenant's credentials, one job, the catalog, ...). Every write to a scope replaces the scope's
token in Redis with a new random one, right away and again once the transaction commits.
Each process mirrors the tokens it has read, and Redis pushes it an invalidation whenever
one changes (TokenMirror), so checking a snapshot costs no round trip while nothing changed.
Tokens are read before the database is, so a snapshot can only ever be tagged with tokens
older than what it shows.

The database stays the source of truth: a snapshot is only served while its tokens are
current, and never longer than SNAPSHOT_MAX_AGE seconds (the bound if a token change is lost
while Redis is unreachable). Without Redis, or with STATUS_SNAPSHOTS off, nothing is kept
and every request reads the database; writes still replace tokens whenever there is a Redis,
for the processes that do keep snapshots.
"""
import logging
import os
import secrets
import threading
import time
from collections import OrderedDict

import redis
from django.conf import settings
from django.db import transaction
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "sparkexport:snapshot-token:"
# A scope nobody writes to for a day loses its token (Redis does not keep a key per job
# forever); its next read starts a new one, and its snapshots are rebuilt once.
TOKEN_TTL_SECONDS = 24 * 3600
# Neither a poll nor a write may wait long on a Redis outage: the database answers instead.
REDIS_TIMEOUT_SECONDS = 0.5
# After a failure Redis is left alone this long, so a hung server costs one request its
# timeout, not every request.
REDIS_BACKOFF_SECONDS = 5.0
# A tracking connection dropped without a word (an idle timeout in a NAT) would stop bringing
# invalidations: the mirror proves it alive with a PING at least this often.
MIRROR_CHECK_SECONDS = 1.0


def reads_enabled() -> bool:
    """Whether this process keeps snapshots and answers from them."""
    return bool(settings.STATUS_SNAPSHOTS and settings.REDIS_URL)


def writes_enabled() -> bool:
    """Whether writes replace tokens: whenever there is a Redis, for the processes that read."""
    return bool(settings.REDIS_URL)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Breaker:
    """Leaves Redis alone for REDIS_BACKOFF_SECONDS after it failed."""

    def __init__(self):
        self._open_until = 0.0

    def is_open(self) -> bool:
        return time.monotonic() < self._open_until

    def trip(self, what: str, exc: Exception) -> None:
        logger.warning("%s: Redis failed (%r); not used for %.0f s", what, exc, REDIS_BACKOFF_SECONDS)
        self._open_until = time.monotonic() + REDIS_BACKOFF_SECONDS

    def close(self) -> None:
        self._open_until = 0.0


breaker = Breaker()
_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def _redis() -> redis.Redis:
    url = settings.REDIS_URL
    with _clients_lock:
        if url not in _clients:
            _clients[url] = redis.Redis.from_url(
                url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
            )
        return _clients[url]


def _new_token() -> str:
    return secrets.token_hex(8)


class TokenMirror:
    """This process's copy of the tokens, which Redis keeps current.

    Its connection asks Redis to push an invalidation whenever any token changes
    (`CLIENT TRACKING ON BCAST PREFIX`, RESP3), so a request reads the pushes that arrived
    (a non-blocking poll of the socket) and then its tokens from memory: no round trip
    unless a token is missing, or the connection has not been proved alive for
    MIRROR_CHECK_SECONDS. Replies and pushes share the connection, in order, so a push for
    an earlier change is always applied before a value read after it is stored. Only tokens
    that exist are kept. If the connection fails, everything it mirrored is forgotten; if
    the server refuses tracking (some proxies do), each request reads its tokens with one
    MGET instead.
    """

    MAX_TOKENS = 100_000
    TRACKING = ("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", TOKEN_PREFIX)

    def __init__(self):
        self._lock = threading.Lock()
        self._connection = None
        self._owner = None  # (process id, Redis URL) the connection belongs to
        self._tracking = False
        self._checked_at = 0.0
        self._known: dict[str, str] = {}

    def tokens(self, scopes: list[str]) -> dict[str, str | None]:
        with self._lock:
            try:
                return self._tokens(scopes)
            except BaseException:
                self._disconnect()
                raise

    def _tokens(self, scopes):
        connection = self._connect()
        if time.monotonic() - self._checked_at > MIRROR_CHECK_SECONDS:
            self._command(connection, "PING")
        while connection.can_read(timeout=0):
            # Data is waiting: read the whole push, however it was split on the wire.
            connection.read_response(push_request=True, disconnect_on_error=False)
        fetched = {}
        missing = [scope for scope in scopes if scope not in self._known]
        if missing:
            values = self._command(connection, "MGET", *(TOKEN_PREFIX + scope for scope in missing))
            fetched = {scope: _text(value) for scope, value in zip(missing, values) if value is not None}
            if self._tracking:
                if len(self._known) + len(fetched) > self.MAX_TOKENS:
                    self._known.clear()
                self._known.update(fetched)
        return {scope: self._known.get(scope) or fetched.get(scope) for scope in scopes}

    def _command(self, connection, *args):
        connection.send_command(*args)
        reply = connection.read_response()  # pushes that came first are applied on the way
        self._checked_at = time.monotonic()
        return reply

    def _connect(self):
        owner = (os.getpid(), settings.REDIS_URL)
        if self._connection is not None and self._owner == owner:
            return self._connection
        self._disconnect()
        pool = redis.ConnectionPool.from_url(
            settings.REDIS_URL,
            protocol=3,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            # Reconnecting behind our back would drop the tracking silently: fail instead.
            retry=Retry(NoBackoff(), 0),
        )
        connection = pool.make_connection()
        connection.connect()
        connection._parser.set_invalidation_push_handler(self._invalidated)
        try:
            self._command(connection, *self.TRACKING)
            self._tracking = True
        except redis.ResponseError as exc:
            logger.warning("Redis refused CLIENT TRACKING (%s): tokens are read on every request", exc)
            self._tracking = False
        self._connection, self._owner = connection, owner
        return connection

    def _invalidated(self, push) -> None:
        keys = push[1]
        if keys is None:  # FLUSHDB or FLUSHALL
            self._known.clear()
            return
        for key in keys:
            self._known.pop(_text(key).removeprefix(TOKEN_PREFIX), None)

    def _disconnect(self) -> None:
        self._known.clear()
        if self._connection is not None:
            self._connection.disconnect()
        self._connection = self._owner = None


_mirror = TokenMirror()


def current_tokens(scopes: list[str]) -> dict[str, str | None] | None:
    """The scopes' tokens (None for a scope that has none yet), or None when Redis can't tell."""
    if not reads_enabled() or breaker.is_open():
        return None
    try:
        return _mirror.tokens(scopes)
    except Exception as exc:  # a poll never fails for its snapshots: the database answers
        breaker.trip("snapshots skipped", exc)
        return None


def _set_tokens(scopes, what: str, **options) -> None:
    if breaker.is_open():
        return  # what is not replaced now is bounded by SNAPSHOT_MAX_AGE
    try:
        with _redis().pipeline(transaction=False) as pipe:
            for scope in scopes:
                pipe.set(TOKEN_PREFIX + scope, _new_token(), ex=TOKEN_TTL_SECONDS, **options)
            pipe.execute()
    except Exception as exc:  # a write never fails for the snapshots of others
        breaker.trip(what, exc)


def tokens_start(scopes: list[str]) -> None:
    """Give these scopes a token if they have none, so that their next read can be kept.

    Called only after the database showed the scope exists and the caller may read it: a
    token per made-up job id would let anyone fill Redis. The read that calls this keeps
    nothing itself, because its rows may be older than the token it would create.
    """
    _set_tokens(scopes, "snapshot tokens not started", nx=True)


def _replace_tokens(scopes: tuple[str, ...]) -> None:
    _set_tokens(scopes, f"snapshot tokens of {', '.join(scopes)} not replaced")


def scopes_changed(*scopes: str, using: str = "default") -> None:
    """Mark the scopes changed: now (for readers in this transaction) and again after commit
    (a reader between the two saw the old rows; its snapshot must not outlive the commit)."""
    if not writes_enabled() or not scopes:
        return
    _replace_tokens(scopes)
    connection = transaction.get_connection(using)
    if not connection.in_atomic_block:
        return
    # One replacement per scope at commit, however many rows the transaction wrote. Django
    # starts a new run_on_commit list at every commit or rollback, so a set tied to the
    # current list never outlives its transaction.
    hooks, pending = getattr(connection, "_snapshot_scopes_pending", (None, None))
    if hooks is connection.run_on_commit:
        pending.update(scopes)
        return
    pending = set(scopes)
    transaction.on_commit(lambda: _replace_tokens(tuple(pending)), using=using, robust=True)
    connection._snapshot_scopes_pending = (connection.run_on_commit, pending)


class SnapshotStore:
    """A least-recently-used map of snapshots in this process, bounded by total weight.

    A snapshot weighs what its caller says (about one unit per row of its document), so a
    few status documents of thousand-version exports cannot fill a server process's memory.
    """

    def __init__(self, max_weight: int = 20_000):
        self.max_weight = max_weight
        self._entries: OrderedDict = OrderedDict()  # key -> (tokens, expires_at, weight, value)
        self._weight = 0
        self._lock = threading.Lock()

    def get(self, key, tokens: tuple):
        """The value stored under `key` with exactly these tokens and not yet too old, or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            stored_tokens, expires_at, _, value = entry
            if stored_tokens != tokens or time.monotonic() >= expires_at:
                self._remove(key)
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key, tokens: tuple, value, *, max_age: float | None = None, weight: int = 1) -> None:
        if weight > self.max_weight:
            return
        age = settings.SNAPSHOT_MAX_AGE if max_age is None else min(max_age, settings.SNAPSHOT_MAX_AGE)
        with self._lock:
            self._remove(key)
            self._entries[key] = (tokens, time.monotonic() + age, weight, value)
            self._weight += weight
            while self._weight > self.max_weight:
                self._remove(next(iter(self._entries)))

    def _remove(self, key) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._weight -= entry[2]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._weight = 0


store = SnapshotStore()
