"""Every write to a model that a snapshot shows replaces the tokens of the scopes it changes.

One mechanism at the model layer, so that no service, admin action or command has to
remember it:

- `SnapshotQuerySet` (every manager of such a model, its base manager included through
  `Meta.base_manager_name = "objects"`) covers `update()` (and so `bulk_update()`, which
  Django builds on it) and `bulk_create()`, which send no signal;
- the model signals cover `save()` (and so `create()`, `get_or_create()`, ...), `delete()`
  of instances and querysets, and cascades: with a receiver connected, Django's deletion
  collector sends the signals for every row it deletes;
- a deletion that sets a foreign key of a fed model to NULL (or a default) is followed too.

A model declares what it feeds with `feeds_snapshots`: the lookups its scopes are made of,
the function from those values to scope names, and the columns no snapshot shows (a write
of only those changes nothing). tests/security/test_snapshot_writes.py enumerates every
model read while snapshots are built and every write kind, and fails on one not covered.
"""
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ObjectDoesNotExist
from django.db import models, transaction
from django.db.models.signals import post_save, pre_delete, pre_save

from sparkexport.snapshots.tokens import scopes_changed, writes_enabled


@dataclass(frozen=True)
class Feed:
    """How the rows of one model map to the scopes of the snapshots that show them."""

    model: type
    lookups: tuple[str, ...]  # values() lookups the scopes are made of, e.g. ("pk", "tenant__slug")
    scopes_of: Callable[[dict], Iterable[str]]
    ignored_fields: frozenset = field(default_factory=frozenset)

    def scopes(self, rows: Iterable[dict]) -> set[str]:
        return {scope for row in rows for scope in self.scopes_of(row) if scope}

    def rows(self, queryset) -> list[dict]:
        return list(queryset.values("pk", *self.lookups))

    def rows_of(self, instances) -> list[dict]:
        """The lookups' values of instances, from their own columns and the rows they point to
        (read once per instance at most; a target that does not exist shows in no snapshot)."""
        return [row for row in (_row_of(instance, self.lookups) for instance in instances) if row is not None]

    def changes_scopes(self, field_names) -> bool:
        return field_names is None or not set(field_names) <= self.ignored_fields

    @property
    def moving_fields(self) -> set[str]:
        """Columns whose new value changes the scopes (a renamed tenant slug, a moved row)."""
        return {lookup.split("__")[0] for lookup in self.lookups} - {"pk"}


def _row_of(instance, lookups) -> dict | None:
    row = {"pk": instance.pk}
    for lookup in lookups:
        *path, last = lookup.split("__")
        value = instance
        try:
            for name in path:
                value = getattr(value, name)  # a foreign key: cached, or read once
        except ObjectDoesNotExist:
            return None
        row[lookup] = value.pk if last == "pk" else getattr(value, value._meta.get_field(last).attname)
    return row


_feeds: dict[type, Feed] = {}
# Rows per UPDATE statement: an IN list stays well inside every backend's parameter limit.
UPDATE_BATCH = 5_000


def feed_of(model) -> Feed:
    return _feeds[model._meta.concrete_model]


def fed_models() -> list[type]:
    return list(_feeds)


def _announce(feed: Feed, rows: list[dict], using: str) -> None:
    scopes_changed(*sorted(feed.scopes(rows)), using=using)


class SnapshotQuerySet(models.QuerySet):
    """The QuerySet of a model that snapshots show: its bulk writes announce what they change."""

    def update(self, **kwargs):
        feed = feed_of(self.model)
        if not writes_enabled() or not feed.changes_scopes(kwargs):
            return super().update(**kwargs)
        rows, updated = [], 0
        with transaction.atomic(using=self.db, savepoint=False):
            # Lock the rows first, in one order: exactly these are updated, none slips in
            # between. Through a pk subquery, so that distinct or annotated querysets lock too.
            locked = self.model._base_manager.using(self.db).filter(pk__in=self.values("pk"))
            rows = feed.rows(locked.select_for_update(of=("self",)).order_by("pk"))
            pks = [row["pk"] for row in rows]
            for start in range(0, len(pks), UPDATE_BATCH):
                batch = pks[start : start + UPDATE_BATCH]
                updated += models.QuerySet.update(self.filter(pk__in=batch), **kwargs)
                if feed.moving_fields & set(kwargs):
                    rows += feed.rows(self.model._base_manager.using(self.db).filter(pk__in=batch))
        _announce(feed, rows, self.db)
        return updated

    def bulk_create(self, objs, *args, **kwargs):
        created = super().bulk_create(objs, *args, **kwargs)
        if writes_enabled():
            feed = feed_of(self.model)
            _announce(feed, feed.rows_of(created), self.db)
        return created


def _old_rows_of(sender, instance, using=None, update_fields=None, **kwargs):
    """Before a save that may move the row to other scopes: remember the scopes it leaves."""
    feed = feed_of(sender)
    if instance._state.adding or not writes_enabled() or not feed.moving_fields:
        return
    if update_fields is not None and not feed.moving_fields & set(update_fields):
        return
    instance._snapshot_rows_before = feed.rows(sender._base_manager.using(using).filter(pk=instance.pk))


def _saved(sender, instance, using=None, update_fields=None, **kwargs):
    # Fixtures (`raw`) too: loaddata can overwrite rows that snapshots show.
    feed = feed_of(sender)
    if not writes_enabled() or not feed.changes_scopes(update_fields):
        return
    rows = instance.__dict__.pop("_snapshot_rows_before", []) + feed.rows_of([instance])
    _announce(feed, rows, using)


class _DeletionBatch(threading.local):
    """The scopes one delete() call (its `origin`) announced so far: a cascade over a thousand
    rows of one job announces the job's scopes once, not a thousand times."""

    origin = None  # a weak reference
    announced: set = set()

    def new_scopes(self, origin, scopes: set[str]) -> set[str]:
        if origin is None:
            return scopes
        if self.origin is None or self.origin() is not origin:
            self.origin, self.announced = weakref.ref(origin), set()
        new = scopes - self.announced
        self.announced |= new
        return new


_deletion = _DeletionBatch()


def _deleting(sender, instance, using=None, origin=None, **kwargs):
    # Before the delete: rows joined through foreign keys can still be read.
    if writes_enabled():
        feed = feed_of(sender)
        scopes = _deletion.new_scopes(origin, feed.scopes(feed.rows_of([instance])))
        scopes_changed(*sorted(scopes), using=using)


def _set_null_follower(feed: Feed, foreign_key) -> Callable:
    def deleting_target(sender, instance, using=None, **kwargs):
        if writes_enabled():
            referring = feed.model._base_manager.using(using).filter(**{foreign_key.name: instance})
            _announce(feed, feed.rows(referring), using)

    return deleting_target


def _nulled_by_deletion(foreign_key) -> bool:
    on_delete = getattr(foreign_key.remote_field, "on_delete", None)
    return on_delete in (models.SET_NULL, models.SET_DEFAULT) or getattr(on_delete, "deconstruct", None) is not None


def feeds_snapshots(model, *, lookups=(), scopes_of, ignored_fields=()) -> None:
    """Declare that snapshots show rows of `model` (whose managers are SnapshotQuerySets)."""
    feed = Feed(model, tuple(lookups), scopes_of, frozenset(ignored_fields))
    _feeds[model] = feed
    uid = f"snapshots-{model._meta.label_lower}"
    pre_save.connect(_old_rows_of, sender=model, dispatch_uid=f"{uid}-pre-save")
    post_save.connect(_saved, sender=model, dispatch_uid=f"{uid}-save")
    pre_delete.connect(_deleting, sender=model, dispatch_uid=f"{uid}-delete")
    for model_field in model._meta.get_fields():
        if model_field.many_to_one and model_field.concrete and _nulled_by_deletion(model_field):
            pre_delete.connect(
                _set_null_follower(feed, model_field),
                sender=model_field.related_model,
                dispatch_uid=f"{uid}-{model_field.name}-nulled",
                weak=False,
            )
