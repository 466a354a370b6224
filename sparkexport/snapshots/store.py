"""The snapshots of one process: bounded by weight, fair between tenants, never too old."""
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from django.conf import settings

from sparkexport.metrics import snapshot_lookup_count

# Whatever Redis says, a credential is re-read from the database at least this often: no
# process accepts a revoked or narrowed key more than this long after the change commits.
CREDENTIAL_MAX_AGE = 5.0


@dataclass(frozen=True)
class _Entry:
    tokens: tuple
    expires_at: float
    weight: int
    owner: str
    value: object


class SnapshotStore:
    """A least-recently-used map of snapshots, bounded by total weight.

    A snapshot weighs what its caller says (about one unit per row of its document), so a few
    status documents of thousand-version exports cannot fill a server process's memory. Each
    snapshot has an owner (the tenant it shows); once the store is full, an owner holding more
    than `owner_share` of it makes room from its own snapshots, so one caller cannot flood
    the store and evict everyone else's.
    """

    def __init__(self, max_weight: int = 20_000, owner_share: float = 0.25):
        self.max_weight = max_weight
        self.owner_limit = int(max_weight * owner_share)
        self._entries: OrderedDict = OrderedDict()  # key -> _Entry, least recently used first
        self._by_owner: dict[str, OrderedDict] = {}  # owner -> its keys, least recently used first
        self._owner_weight: dict[str, int] = {}
        self._weight = 0
        self._lock = threading.Lock()

    def get(self, key, tokens: tuple):
        """The value stored under `key` with exactly these tokens and not yet too old, or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and (entry.tokens != tokens or time.monotonic() >= entry.expires_at):
                self._remove(key)
                entry = None
            if entry is not None:
                self._entries.move_to_end(key)
                self._by_owner[entry.owner].move_to_end(key)
        snapshot_lookup_count(key, hit=entry is not None)
        return None if entry is None else entry.value

    def put(self, key, tokens: tuple, value, *, born: float, max_age: float | None = None,
            weight: int = 1, owner: str = "") -> None:
        """Keep `value` while its tokens hold, for at most `max_age` (capped at SNAPSHOT_MAX_AGE)
        counted from `born`: the monotonic time its tokens were read, before the database."""
        if weight > self.max_weight:
            return
        age = settings.SNAPSHOT_MAX_AGE if max_age is None else min(max_age, settings.SNAPSHOT_MAX_AGE)
        entry = _Entry(tokens, born + age, weight, owner, value)
        with self._lock:
            self._remove(key)
            self._entries[key] = entry
            self._by_owner.setdefault(owner, OrderedDict())[key] = None
            self._owner_weight[owner] = self._owner_weight.get(owner, 0) + weight
            self._weight += weight
            while self._weight > self.max_weight:
                if self._owner_weight[owner] > self.owner_limit:
                    self._remove(next(iter(self._by_owner[owner])))
                else:
                    self._remove(next(iter(self._entries)))

    def put_credential(self, key, tokens: tuple, value, *, born: float, owner: str = "") -> None:
        """Keep a credential: at most CREDENTIAL_MAX_AGE, whatever its caller or the settings say."""
        self.put(key, tokens, value, born=born, max_age=CREDENTIAL_MAX_AGE, owner=owner)

    def _remove(self, key) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self._weight -= entry.weight
        keys = self._by_owner[entry.owner]
        del keys[key]
        self._owner_weight[entry.owner] -= entry.weight
        if not keys:
            del self._by_owner[entry.owner], self._owner_weight[entry.owner]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._by_owner.clear()
            self._owner_weight.clear()
            self._weight = 0


store = SnapshotStore()
# A lock held by another thread of the parent at a fork would never be released in the child.
os.register_at_fork(after_in_child=lambda: setattr(store, "_lock", threading.Lock()))
