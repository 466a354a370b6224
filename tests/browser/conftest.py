import pytest


@pytest.fixture(scope="session")
def live_server(django_db_setup, live_server):
    """pytest-django's live server, started after the test database so it stops before it goes."""
    return live_server
