import django_rq
from django.core.cache import cache
import pytest
from rest_framework.test import APIClient

from sparkexport import snapshots
from sparkexport.snapshots import tokens

from tests.factories import TenantFactory, make_api_key


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Each test stores files under its own folder (default storage follows MEDIA_ROOT)."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Rate-limit counters start at zero and no status snapshot is kept, in every test."""
    cache.clear()
    snapshots.store.clear()
    tokens.read_breaker.close()
    tokens.write_breaker.close()


@pytest.fixture
def redis_queue():
    """The real `exports` queue on the test Redis database, emptied before and after."""
    queue = django_rq.get_queue("exports")
    queue.connection.flushdb()
    yield queue
    queue.connection.flushdb()


@pytest.fixture
def tenant(db):
    return TenantFactory(slug="acme")


@pytest.fixture
def other_tenant(db):
    return TenantFactory(slug="globex")


class SparkClient(APIClient):
    """An API client that sends a tenant's API key the way the cspark SDK does."""

    def __init__(self, tenant_slug: str, key: str):
        super().__init__()
        self.tenant_slug = tenant_slug
        self.credentials(HTTP_X_SYNTHETIC_KEY=key, HTTP_X_TENANT_NAME=tenant_slug)

    def api(self, path: str) -> str:
        return f"/{self.tenant_slug}/api/v4/{path}"


@pytest.fixture
def api(tenant):
    return SparkClient(tenant.slug, make_api_key(tenant))


@pytest.fixture
def other_api(other_tenant):
    return SparkClient(other_tenant.slug, make_api_key(other_tenant, name="globex-key"))
