"""Change tokens: one random value per scope in Redis, replaced by every write to the scope.

Reads: each process mirrors the tokens it has read (TokenMirror); Redis pushes it an
invalidation whenever one changes, so checking a snapshot costs no round trip while nothing
changed. Every token the mirror hands out is prefixed with the run id and replication id of
the Redis instance it came from: a Redis restarted empty, restored from an older dump or
replaced by a promoted replica has other ids, so no snapshot tagged before can match again,
whatever token values it brings back; the mirror forgets everything when its connection drops.

Writes: a write replaces its scopes' tokens right away (for readers in its own transaction,
and so that what was kept before it is dropped even if the commit's replacement were lost) and
again once at commit, always: a write never skips this because reads failed, and the commit's attempt
does not wait for the write breaker. What Redis refuses then is retried by this process every
second until it lands (and by an RQ job or a command before it ends); until then other
processes are bounded by the age limits of their snapshots (snapshots/store.py).
"""
import atexit
import logging
import os
import secrets
import threading
import time

import redis
from django.conf import settings
from django.db import transaction
from redis.backoff import NoBackoff
from redis.retry import Retry

from sparkexport.redis_client import redis_client

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "sparkexport:snapshot-token:"
# A scope nobody writes to for a day loses its token (Redis does not keep a key per job
# forever); its next read starts a new one, and its snapshots are rebuilt once.
TOKEN_TTL_SECONDS = 24 * 3600
# Neither a poll nor a write may wait long on a Redis outage: the database answers instead.
REDIS_TIMEOUT_SECONDS = 0.5
# After a failure Redis is left alone this long (by reads, or by writes), so a hung server
# costs one request its timeout, not every request.
REDIS_BACKOFF_SECONDS = 5.0
# A tracking connection dropped without a word (an idle timeout in a NAT) would stop bringing
# invalidations: the mirror proves it alive with a PING at least this often.
MIRROR_CHECK_SECONDS = 1.0
# Replacements Redis refused, retried this often; past MAX_PENDING scopes the oldest are
# dropped (the snapshots' age limits still bound what others serve).
RETRY_SECONDS = 1.0
MAX_PENDING = 10_000


def reads_enabled() -> bool:
    """Whether this process keeps snapshots and answers from them."""
    return bool(settings.STATUS_SNAPSHOTS and settings.REDIS_URL)


def writes_enabled() -> bool:
    """Whether writes replace tokens: whenever there is a Redis, for the processes that read."""
    return bool(settings.REDIS_URL)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Breaker:
    """Leaves Redis alone for REDIS_BACKOFF_SECONDS after it failed one kind of use."""

    def __init__(self, use: str):
        self.use = use
        self._open_until = 0.0

    def is_open(self) -> bool:
        return time.monotonic() < self._open_until

    def trip(self, exc: Exception) -> None:
        logger.warning("%s: Redis failed (%r); not tried for %.0f s", self.use, exc, REDIS_BACKOFF_SECONDS)
        self._open_until = time.monotonic() + REDIS_BACKOFF_SECONDS

    def close(self) -> None:
        self._open_until = 0.0


read_breaker = Breaker("snapshot reads")
write_breaker = Breaker("token replacements")


def _redis() -> redis.Redis:
    return redis_client(REDIS_TIMEOUT_SECONDS)


INSTANCE_INFO = (("INFO", "server"), ("INFO", "replication"))


def _instance_id(server_info, replication_info) -> str:
    """The run id of the Redis process and the id of its replication history: a restart, a
    restore from a dump, a promoted replica or a full resync changes one of them."""
    fields = {}
    for line in f"{_text(server_info)}\n{_text(replication_info)}".splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    if not fields.get("run_id"):
        raise redis.ResponseError("INFO server gave no run_id")
    return f"{fields['run_id']}.{fields.get('master_replid', '')[:12]}"


class TokenMirror:
    """This process's copy of the tokens, which Redis keeps current.

    Its connection asks Redis to push an invalidation whenever any token changes
    (`CLIENT TRACKING ON BCAST PREFIX`, RESP3), so a request reads the pushes that arrived
    (a non-blocking poll of the socket) and then its tokens from memory: no round trip
    unless a token is missing, or the connection has not been proved alive for
    MIRROR_CHECK_SECONDS. Replies and pushes share the connection, in order, so a push for
    an earlier change is always applied before a value read after it is stored. Only tokens
    that exist are kept. If the connection fails, everything it mirrored is forgotten; if
    the server refuses tracking (some proxies do), each request reads its tokens and the
    server's ids with one pipelined round trip instead.
    """

    MAX_TOKENS = 100_000
    TRACKING = ("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", TOKEN_PREFIX)

    def __init__(self):
        self._lock = threading.Lock()
        self._connection = None
        self._owner = None  # (process id, Redis URL) the connection belongs to
        self._tracking = False
        self._instance = ""  # the run id and replication id of the Redis it mirrors
        self._checked_at = 0.0
        self._known: dict[str, str] = {}

    def tokens(self, scopes: list[str]) -> dict[str, str | None]:
        """Each scope's token, prefixed with the run id of the Redis that holds it."""
        with self._lock:
            try:
                return self._tokens(scopes)
            except BaseException:
                self._disconnect()
                raise

    def _tokens(self, scopes):
        connection = self._connect()
        if not self._tracking:
            return self._read_untracked(connection, scopes)
        if time.monotonic() - self._checked_at > MIRROR_CHECK_SECONDS:
            self._command(connection, "PING")
        while connection.can_read(timeout=0):
            # Data is waiting: read the whole push, however it was split on the wire.
            connection.read_response(push_request=True, disconnect_on_error=False)
        missing = [scope for scope in scopes if scope not in self._known]
        if missing:
            values = self._command(connection, "MGET", *(TOKEN_PREFIX + scope for scope in missing))
            fetched = {scope: _text(value) for scope, value in zip(missing, values) if value is not None}
            if len(self._known) + len(fetched) > self.MAX_TOKENS:
                self._known.clear()
            self._known.update(fetched)
        return {scope: self._tagged(self._known.get(scope)) for scope in scopes}

    def _read_untracked(self, connection, scopes):
        connection.send_packed_command(
            connection.pack_commands([*INSTANCE_INFO, ("MGET", *(TOKEN_PREFIX + scope for scope in scopes))])
        )
        self._instance = _instance_id(connection.read_response(), connection.read_response())
        values = connection.read_response()
        return {scope: self._tagged(_text(value) if value is not None else None) for scope, value in zip(scopes, values)}

    def _tagged(self, token: str | None) -> str | None:
        return f"{self._instance}/{token}" if token is not None else None

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
        # The instance this connection reaches, for its whole life: a server that restarts
        # or fails over closes it, and the next connection reads the new ids.
        self._instance = _instance_id(*(self._command(connection, *command) for command in INSTANCE_INFO))
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
        self._instance = ""
        if self._connection is not None:
            self._connection.disconnect()
        self._connection = self._owner = None


_mirror = TokenMirror()


def current_tokens(scopes: list[str]) -> dict[str, str | None] | None:
    """The scopes' tokens (None for a scope that has none yet), or None when Redis can't tell."""
    if not reads_enabled() or read_breaker.is_open():
        return None
    try:
        return _mirror.tokens(scopes)
    except Exception as exc:  # a poll never fails for its snapshots: the database answers
        read_breaker.trip(exc)
        return None


def _new_token() -> str:
    return secrets.token_hex(8)


def _write(scopes, **options) -> None:
    with _redis().pipeline(transaction=False) as pipe:
        for scope in scopes:
            pipe.set(TOKEN_PREFIX + scope, _new_token(), ex=TOKEN_TTL_SECONDS, **options)
        pipe.execute()


class PendingReplacements:
    """Replacements Redis refused, retried by a thread of this process until they land."""

    def __init__(self):
        self._lock = threading.Lock()
        self._scopes: dict[str, None] = {}  # ordered: the oldest go first past MAX_PENDING
        self._thread_pid = None

    def add(self, scopes) -> None:
        with self._lock:
            self._scopes.update(dict.fromkeys(scopes))
            while len(self._scopes) > MAX_PENDING:
                self._scopes.pop(next(iter(self._scopes)))
            if self._thread_pid != os.getpid():  # none yet, or it stayed in the parent of a fork
                self._thread_pid = os.getpid()
                threading.Thread(target=self._retry_forever, name="snapshot-token-retry", daemon=True).start()

    def __len__(self) -> int:
        return len(self._scopes)

    def flush(self) -> bool:
        """Try the pending replacements once; True when none is left."""
        with self._lock:
            scopes = list(self._scopes)
        if not scopes:
            return True
        try:
            _write(scopes)
        except Exception as exc:
            logger.warning("%d snapshot token replacement(s) still pending: %r", len(scopes), exc)
            return False
        write_breaker.close()
        with self._lock:
            for scope in scopes:
                self._scopes.pop(scope, None)
            return not self._scopes

    def _retry_forever(self) -> None:
        while True:
            time.sleep(RETRY_SECONDS)
            if self.flush():
                with self._lock:
                    if not self._scopes:
                        self._thread_pid = None
                        return


pending = PendingReplacements()
# A management command that ends right after its write gives them one last try.
atexit.register(pending.flush)


def _after_fork_in_child() -> None:
    """A forked child (gunicorn worker, RQ work horse) starts with fresh locks: one held by
    another thread of the parent at the fork would never be released. Its mirror connection
    is the parent's, so it is dropped; the retry thread did not survive the fork."""
    _mirror._lock = threading.Lock()
    _mirror._connection = _mirror._owner = None
    _mirror._known.clear()
    pending._lock = threading.Lock()
    pending._thread_pid = None


os.register_at_fork(after_in_child=_after_fork_in_child)


def _replace_now(scopes) -> None:
    """Before commit: a first replacement, skipped while writes are failing (commit's follows)."""
    if write_breaker.is_open():
        return
    try:
        _write(scopes)
    except Exception as exc:  # a write never fails for the snapshots of others
        write_breaker.trip(exc)


def _replace_at_commit(scopes) -> None:
    """After commit: always tried; what Redis refuses goes to the retry thread."""
    try:
        _write(scopes)
    except Exception as exc:
        write_breaker.trip(exc)
        pending.add(scopes)
    else:
        write_breaker.close()


def flush_pending() -> None:
    """Give pending replacements a last try (a process about to end without atexit)."""
    pending.flush()


def tokens_start(scopes: list[str]) -> None:
    """Give these scopes a token if they have none, so that their next read can be kept.

    Called only after the database showed the scope exists and the caller may read it: a
    token per made-up job id would let anyone fill Redis. The read that calls this keeps
    nothing itself, because its rows may be older than the token it would create.
    """
    if write_breaker.is_open():
        return
    try:
        _write(scopes, nx=True)
    except Exception as exc:
        write_breaker.trip(exc)


def scopes_changed(*scopes: str, using: str = "default") -> None:
    """Mark the scopes changed: now (for readers in this transaction) and again after commit
    (a reader between the two saw the old rows; its snapshot must not outlive the commit).

    Called by sparkexport/snapshots/writes.py for every write to a model snapshots show.
    """
    if not writes_enabled() or not scopes:
        return
    connection = transaction.get_connection(using)
    if not connection.in_atomic_block:
        _replace_at_commit(scopes)
        return
    _replace_now(scopes)
    # One replacement per scope at commit, however many rows the transaction wrote. Django
    # starts a new run_on_commit list at every commit or rollback, so a set tied to the
    # current list never outlives its transaction.
    hooks, pending_scopes = getattr(connection, "_snapshot_scopes_pending", (None, None))
    if hooks is not connection.run_on_commit:
        pending_scopes = set()
        transaction.on_commit(lambda: _replace_at_commit(tuple(pending_scopes)), using=using, robust=True)
        connection._snapshot_scopes_pending = (connection.run_on_commit, pending_scopes)
    pending_scopes.update(scopes)
