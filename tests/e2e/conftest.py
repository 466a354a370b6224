"""Real processes for end-to-end tests: an `rqworker` on the test database, and the live server."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests import log_secrets
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


def process_env() -> dict:
    """The environment that points a manage.py subprocess at this test's database and files."""
    db = settings.DATABASES["default"]
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PYTHONUNBUFFERED": "1",
    }


def manage(*args, timeout=120) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    log_secrets.SECRETS.add_printed(result.stdout)  # a key made by `apikey_create --json`, ...
    return result


@pytest.fixture
def start_worker(redis_queue, tmp_path):
    """Start `manage.py rqworker exports imports` (a real forking worker); stopped at teardown."""
    processes = []

    def start():
        log = open(tmp_path / f"worker-{len(processes)}.log", "w")
        process = subprocess.Popen(
            [sys.executable, "manage.py", "rqworker", "exports", "imports"],
            cwd=ROOT,
            env=process_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        processes.append((process, log))
        wait_for(lambda: redis_queue_has_worker(redis_queue), 30, message="the worker to register")
        return process

    yield start
    for process, log in processes:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def redis_queue_has_worker(queue) -> bool:
    from rq import Worker

    return bool(Worker.all(queue=queue))
