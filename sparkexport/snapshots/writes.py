"""Every write to a model that a snapshot shows replaces the tokens of the scopes it changes.

One mechanism at the model layer, so that no service, admin action or command has to
remember it:

- `SnapshotQuerySet` (every manager of such a model, its base manager included through
  `Meta.base_manager_name = "objects"`) covers `update()`, `bulk_create()` and
  `bulk_update()`, which send no signal;
- the model signals cover `save()` (and so `create()`, `get_or_create()`, ...), `delete()`
  of instances and querysets, and cascades: with a receiver connected, Django's deletion
  collector sends the signals for every row it deletes;
- a deletion that sets a foreign key of a fed model to NULL (or a default) is followed too.

A model declares what it feeds with `feeds_snapshots`: the lookups its scopes are made of,
the function from those values to scope names, and the columns no snapshot shows (a write
of only those changes nothing). tests/security/test_snapshot_writes.py enumerates every
model read while snapshots are built and every write kind, and fails on one not covered.
"""
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

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
        """The lookups' values for saved instances: from the instances when every lookup is a
        column of their own, else from the database (one query)."""
        instances = [instance for instance in instances if instance.pk is not None]
        if all("__" not in lookup for lookup in self.lookups):
            return [{"pk": i.pk, **{lookup: _column(i, lookup) for lookup in self.lookups}} for i in instances]
        return self.rows(self.model._base_manager.filter(pk__in=[instance.pk for instance in instances]))

    def changes_scopes(self, field_names) -> bool:
        return field_names is None or not set(field_names) <= self.ignored_fields

    @property
    def moving_fields(self) -> set[str]:
        """Columns whose new value changes the scopes (a renamed tenant slug, a moved row)."""
        return {lookup.split("__")[0] for lookup in self.lookups} - {"pk"}


def _column(instance, lookup: str):
    if lookup == "pk":
        return instance.pk
    return getattr(instance, instance._meta.get_field(lookup).attname)


_feeds: dict[type, Feed] = {}


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
        with transaction.atomic(using=self.db, savepoint=False):
            # Lock the rows first: exactly these are updated, and no other can slip in between.
            rows = feed.rows(self.select_for_update(of=("self",)).order_by())
            if not rows:
                return 0
            pks = [row["pk"] for row in rows]
            updated = models.QuerySet.update(self.filter(pk__in=pks), **kwargs)
            if feed.moving_fields & set(kwargs):
                rows += feed.rows(self.model._base_manager.using(self.db).filter(pk__in=pks))
        _announce(feed, rows, self.db)
        return updated

    def bulk_create(self, objs, *args, **kwargs):
        created = super().bulk_create(objs, *args, **kwargs)
        if writes_enabled():
            feed = feed_of(self.model)
            _announce(feed, feed.rows_of(created), self.db)
        return created

    def bulk_update(self, objs, fields, *args, **kwargs):
        objs = list(objs)
        feed = feed_of(self.model)
        if not writes_enabled() or not feed.changes_scopes(fields):
            return super().bulk_update(objs, fields, *args, **kwargs)
        with transaction.atomic(using=self.db, savepoint=False):
            before = feed.rows_of(objs) if feed.moving_fields & set(fields) else []
            updated = super().bulk_update(objs, fields, *args, **kwargs)
            rows = before + feed.rows_of(objs)
        _announce(feed, rows, self.db)
        return updated


def _old_rows_of(sender, instance, raw=False, using=None, update_fields=None, **kwargs):
    """Before a save that may move the row to other scopes: remember the scopes it leaves."""
    feed = feed_of(sender)
    if raw or instance._state.adding or not writes_enabled() or not feed.moving_fields:
        return
    if update_fields is not None and not feed.moving_fields & set(update_fields):
        return
    instance._snapshot_rows_before = feed.rows(sender._base_manager.using(using).filter(pk=instance.pk))


def _saved(sender, instance, raw=False, using=None, update_fields=None, **kwargs):
    feed = feed_of(sender)
    if raw or not writes_enabled() or not feed.changes_scopes(update_fields):
        return
    rows = instance.__dict__.pop("_snapshot_rows_before", []) + feed.rows_of([instance])
    _announce(feed, rows, using)


def _deleting(sender, instance, using=None, **kwargs):
    # Before the delete: rows joined through foreign keys can still be read.
    if writes_enabled():
        feed = feed_of(sender)
        _announce(feed, feed.rows_of([instance]), using)


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
