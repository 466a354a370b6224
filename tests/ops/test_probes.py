"""/health and /ready in one process (tests/ops/test_observed_processes.py: the same against
real processes whose database is gone)."""
import pytest
from django.test import Client

from tests.reliability.conftest import free_port


def test_health_answers_without_the_database():
    # No `db` fixture: pytest-django fails any query this test would run.
    response = Client().get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "UP"}
    assert response["X-Request-ID"]


@pytest.mark.django_db
def test_ready_when_everything_answers():
    response = Client().get("/ready")
    assert response.status_code == 200, response.json()
    assert response.json() == {"status": "UP", "checks": {"database": "up", "redis": "up", "storage": "up"}, "failing": []}


@pytest.mark.django_db
def test_ready_names_an_unreachable_redis(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = Client().get("/ready")
    assert response.status_code == 503
    assert response.json() == {"status": "DOWN", "checks": {"database": "up", "redis": "down", "storage": "up"}, "failing": ["redis"]}


@pytest.mark.django_db
def test_ready_names_a_storage_it_cannot_write_to(settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    settings.MEDIA_ROOT = blocker / "media"  # nothing can be created under a file, not even by root
    response = Client().get("/ready")
    assert response.status_code == 503
    assert response.json()["failing"] == ["storage"]


@pytest.mark.django_db
def test_ready_does_not_say_why_but_logs_it(settings, caplog):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = Client().get("/ready")
    assert "refused" not in response.content.decode().lower()
    assert any("redis unreachable" in message and "refused" in message.lower() for message in caplog.messages)


def test_ready_in_development_mode_needs_no_redis(settings, db):
    settings.REDIS_URL = ""
    response = Client().get("/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["redis"] == "not used"
