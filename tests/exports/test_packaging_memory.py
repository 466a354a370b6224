"""The memory bound of packaging, through the real job path (export_job_package): the peak
of Python allocations stays a few MiB and does not grow with the package (16 vs 64 MiB)."""
import hashlib
import os
import tracemalloc

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from exports.building import export_job_package
from exports.models import ExportJob, FileFilter, JobStatus, VersionFilter
from tenants.models import Folder, Service, ServiceVersion

pytestmark = pytest.mark.django_db
MiB = 1024 * 1024


def make_versions(tenant, folder_name, total_mib):
    """Versions of 1.5 MiB random workbook + 0.5 MiB neuron.zip, 2 MiB each."""
    folder = Folder.objects.create(tenant=tenant, name=folder_name)
    service = Service.objects.create(folder=folder, name="svc")
    versions = []
    for n in range(total_mib // 2):
        workbook, neuron = os.urandom(3 * MiB // 2), os.urandom(MiB // 2)
        v = ServiceVersion(service=service, version=f"1.0.{n}", major=1, minor=0, patch=n,
                           workbook_name="svc.xlsx", workbook_size=len(workbook),
                           workbook_sha256=hashlib.sha256(workbook).hexdigest(),
                           neuron_size=len(neuron), neuron_sha256=hashlib.sha256(neuron).hexdigest())
        v.workbook.save("svc.xlsx", ContentFile(workbook), save=False)
        v.neuron.save("neuron.zip", ContentFile(neuron), save=False)
        v.save()
        versions.append(v)
    return versions


def package_peak(tenant, folder_name, total_mib):
    versions = make_versions(tenant, folder_name, total_mib)
    job = ExportJob.objects.create(tenant=tenant, status=JobStatus.IN_PROGRESS, started_at=timezone.now(),
                                   file_filter=FileFilter.MIGRATE, version_filter=VersionFilter.ALL)
    job.versions.set(versions)
    tracemalloc.start()
    try:
        assert export_job_package(job)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    job.refresh_from_db()
    assert job.status == JobStatus.CLOSED
    assert job.file_size > total_mib * MiB
    return peak


def test_packaging_memory_does_not_grow_with_package_size(tenant):
    tenant.max_package_bytes = 1024 * MiB
    tenant.save()
    small = package_peak(tenant, "small", 16)
    large = package_peak(tenant, "large", 64)
    assert small < 24 * MiB, small
    assert large < 24 * MiB, large
    assert large < small + 4 * MiB, (small, large)
