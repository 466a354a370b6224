"""Factories that keep a version's folder, service and files inside one tenant."""
import hashlib
import zlib
from functools import lru_cache

import factory
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.utils import timezone

from tenants import demo
from tenants.catalog_xcalls import version_xcalls_record
from tenants.models import Folder, Group, Membership, Service, ServiceVersion, Tenant
from tenants.services import apikey_create
from tenants.xcalls import workbook_xcalls


@lru_cache(maxsize=256)
def demo_files(service: str, version: str, calls: tuple[str, ...] = ()) -> tuple[bytes, bytes]:
    return demo.make_demo_workbook(service, version, calls), demo.make_demo_neuron(service, version)


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    slug = factory.Sequence(lambda n: f"tenant-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}@example.com")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    group = Group.USER


class FolderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Folder
        django_get_or_create = ("tenant", "name")

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"folder-{n}")


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service
        django_get_or_create = ("folder", "name")

    folder = factory.SubFactory(FolderFactory)
    name = factory.Sequence(lambda n: f"service-{n}")


class ServiceVersionFactory(factory.django.DjangoModelFactory):
    """A version with a real workbook and, unless compiled=False, a real Neuron package; its
    workbook makes the Xcalls `calls` (references), recorded as service_version_add does."""

    class Meta:
        model = ServiceVersion

    service = factory.SubFactory(ServiceFactory)
    version = "1.0.0"
    compiled = True

    @classmethod
    def _create(cls, model_class, *args, compiled=True, calls=(), **kwargs):
        version = model_class(*args, **kwargs)
        version.major, version.minor, version.patch = (int(p) for p in version.version.split("."))
        workbook, neuron = demo_files(version.service.name, version.version, tuple(calls))
        version.workbook_name = f"{version.service.name}.xlsx"
        version.workbook_size = len(workbook)
        version.workbook_sha256 = hashlib.sha256(workbook).hexdigest()
        version.workbook_crc32 = zlib.crc32(workbook)  # as service_version_add records them
        version.workbook.save(version.workbook_name, ContentFile(workbook), save=False)
        if compiled:
            version.neuron_size = len(neuron)
            version.neuron_sha256 = hashlib.sha256(neuron).hexdigest()
            version.neuron_crc32 = zlib.crc32(neuron)
            version.neuron.save("neuron.zip", ContentFile(neuron), save=False)
        version.xcalls_scanned_at = timezone.now()  # a workbook without calls has nothing to record
        version.save()
        if calls:
            version_xcalls_record(version, workbook_xcalls(version.workbook.path))
        return version


def make_api_key(tenant, name="ci-key", **kwargs) -> str:
    """A live API key's secret for `tenant`."""
    return apikey_create(tenant=tenant, name=name, **kwargs)[1]
