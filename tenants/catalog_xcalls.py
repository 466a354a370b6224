"""Recording the Xcalls of versions: when a version is added, and for versions added before."""
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from sparkexport.storage import STORAGE_ERRORS, local_path
from tenants.models import ServiceVersion, VersionXcall
from tenants.xcalls import Xcall, workbook_xcalls


def version_xcalls_record(version: ServiceVersion, calls: list[Xcall]) -> None:
    """Replace the version's recorded Xcalls with `calls` (read from its workbook)."""
    versions_xcalls_record([(version, calls)])


def versions_xcalls_record(recorded: list[tuple[ServiceVersion, list[Xcall]]]) -> None:
    """Replace each version's recorded Xcalls with its calls, in a fixed number of queries."""
    if not recorded:
        return
    pks = [version.pk for version, _ in recorded]
    now = timezone.now()
    with transaction.atomic():
        VersionXcall.objects.filter(version__in=pks).delete()
        VersionXcall.objects.bulk_create(
            VersionXcall(version=version, reference=c.reference, dynamic=c.dynamic, cell=c.cell, occurrences=c.occurrences)
            for version, calls in recorded
            for c in calls
        )
        ServiceVersion.objects.filter(pk__in=pks).update(xcalls_scanned_at=now)
    for version, _ in recorded:
        version.xcalls_scanned_at = now


@dataclass
class ScanOutcome:
    version: ServiceVersion
    calls: list[Xcall]
    problem: str = ""


def versions_xcalls_scan(
    versions: Iterable[ServiceVersion], *, apply: bool, on_version: Callable[[ScanOutcome], None] = lambda _: None
) -> list[ScanOutcome]:
    """Read the Xcalls of each version's stored workbook; record them with `apply`.

    A workbook that cannot be read is reported (its version keeps no record, so the next run
    tries again) and the scan goes on.
    """
    outcomes = []
    for version in versions:
        try:
            with local_path(version.workbook.storage, version.workbook.name) as path:
                outcome = ScanOutcome(version, workbook_xcalls(path))
        except (*STORAGE_ERRORS, zipfile.BadZipFile, ValueError, KeyError) as exc:  # a missing or damaged file
            outcome = ScanOutcome(version, [], f"{type(exc).__name__}: {exc}")
        if apply and not outcome.problem:
            version_xcalls_record(version, outcome.calls)
        on_version(outcome)
        outcomes.append(outcome)
    return outcomes


def versions_without_xcalls(tenant=None):
    """Versions whose Xcalls were never read, oldest first."""
    versions = ServiceVersion.objects.filter(xcalls_scanned_at__isnull=True).select_related("service__folder__tenant")
    if tenant is not None:
        versions = versions.filter(service__folder__tenant=tenant)
    return versions.order_by("created_at", "pk")


def versions_xcalls_ensure(versions: Iterable[ServiceVersion]) -> list[ServiceVersion]:
    """Record the Xcalls of those of `versions` never read (added before Xcalls were recorded,
    and `catalog_dependencies --apply` not yet run); answers the ones whose workbook could not
    be read, whose Xcalls stay unknown."""
    unscanned = [version for version in versions if version.xcalls_scanned_at is None]
    return [outcome.version for outcome in versions_xcalls_scan(unscanned, apply=True) if outcome.problem]
