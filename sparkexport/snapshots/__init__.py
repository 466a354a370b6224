"""Read-only documents served from process memory while Redis says they are current.

A status poll that authenticates and reads a job costs a few SQL queries, several times what
the rest of the request costs. So the documents polls read are kept in each server process
as snapshots (`store`), each tagged with the change tokens of the scopes it depends on (a
tenant's credentials, one job, the catalog, ...), read before the database is:

- `tokens`: the tokens in Redis, this process's mirror of them (Redis pushes every change),
  and their replacement when a scope is written. A token is bound to the life of the Redis
  instance that holds it, so a restarted, restored or failed-over Redis can never make an
  old snapshot current again;
- `writes`: every write to a model that a snapshot shows replaces the scopes' tokens, at
  the model layer (save, delete, cascades, QuerySet.update, bulk_create, bulk_update), so
  no service has to remember it;
- `store`: the snapshots of this process, bounded by weight, fair between tenants, each
  with a hard age limit whatever Redis says: CREDENTIAL_MAX_AGE (5 s) for credentials,
  SNAPSHOT_MAX_AGE (60 s) for documents.

The database stays the source of truth. Without Redis, or with STATUS_SNAPSHOTS off, nothing
is kept and every request reads the database; writes still replace tokens whenever there is
a Redis, for the processes that do keep snapshots.
"""
from sparkexport.snapshots.store import CREDENTIAL_MAX_AGE, SnapshotStore, store
from sparkexport.snapshots.tokens import (
    TOKEN_PREFIX,
    current_tokens,
    flush_pending,
    reads_enabled,
    scopes_changed,
    tokens_start,
    writes_enabled,
)

__all__ = [
    "CREDENTIAL_MAX_AGE",
    "SnapshotStore",
    "TOKEN_PREFIX",
    "current_tokens",
    "flush_pending",
    "reads_enabled",
    "scopes_changed",
    "store",
    "tokens_start",
    "writes_enabled",
]
