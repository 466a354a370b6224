"""An import checked as a whole: its plan, the services its versions call, its warnings and the
package's lineage. Made at upload (POST import, dry runs) and again by the worker inside its
transaction, against the catalog as it is then, from the same options the job keeps."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from exports.imports.dependencies import dependency_warnings, planned_xcalls
from exports.imports.lineage import PackageLineage
from exports.imports.plan import PlannedService, import_plan_build, plan_outputs
from exports.packages.reader import Package
from tenants.models import Tenant
from tenants.xcalls import Xcall

# The request's options that decide what an import writes; ImportJob keeps each in its field.
PLAN_OPTIONS = ("services_modify", "services_existing", "skip_unchanged", "allow_missing_dependencies")


def plan_options_of(job) -> dict:
    """The PLAN_OPTIONS a job was created with, as `import_check` takes them."""
    return {name: getattr(job, name) for name in PLAN_OPTIONS}


@dataclass
class CheckedImport:
    """What an import will write, and what its status document says about it."""

    plan: list[PlannedService]
    calls: dict[str, list[Xcall]]  # the Xcalls of each version it writes, by workbook path
    warnings: list[dict]
    lineage: PackageLineage

    @property
    def outputs(self) -> dict:
        """The import status document's `outputs`."""
        return {**plan_outputs(self.plan), **self.lineage.outputs()}


def import_check(
    *,
    tenant: Tenant,
    package: Package,
    package_path: str,
    package_sha256: str,
    services_modify: list[dict],
    services_existing: str,
    skip_unchanged: bool,
    allow_missing_dependencies: bool,
    job_id: uuid.UUID,
    known_xcalls: dict[str, list[Xcall]] | None = None,
) -> CheckedImport:
    """The plan and what it writes checked; refuses (ApplicationError) an import that cannot succeed.

    The one check of an import: POST import and its dry run call it at upload, the worker again
    as it applies the job, so a dry run refuses whatever the import would. `known_xcalls`: the
    workbooks' Xcalls found at upload, which the worker does not read again."""
    plan = import_plan_build(
        id_seed=job_id,
        tenant=tenant,
        package=package,
        services_modify=services_modify,
        services_existing=services_existing,
        skip_unchanged=skip_unchanged,
    )
    calls = planned_xcalls(package_path, plan, known_xcalls)
    warnings = dependency_warnings(tenant=tenant, plan=plan, calls=calls, allow_missing=allow_missing_dependencies)
    return CheckedImport(plan, calls, [*_unselected_warnings(package, plan), *warnings], PackageLineage.of(package, package_sha256))


def _unselected_warnings(package: Package, plan: list[PlannedService]) -> list[dict]:
    selected = {(item.source_folder, item.source_service) for item in plan}
    left_out = sorted({f"{v.folder}/{v.service}" for v in package.versions} - {f"{f}/{s}" for f, s in selected})
    return [
        {"code": "SERVICE_NOT_SELECTED", "message": f"{uri} is in the package but not in services_modify, so it was not imported."}
        for uri in left_out
    ]
