"""A real HTTP receiver on 127.0.0.1 (a thread of the test), private networks allowed for it,
and helpers to make endpoints, end jobs and read the docs' verifier."""
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import django_rq
import pytest

from exports.webhooks.services import webhook_endpoint_create

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    at: float


@dataclass
class Receiver:
    """Answers each path by its script: a list of answers taken in turn (the last one repeats),
    each a status code, "hang" (never answers, until the test ends), "slow" (200 after 0.2 s)
    or "big" (200 with a 200 KB body)."""

    base_url: str = ""
    scripts: dict = field(default_factory=dict)
    received: list = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str, *answers) -> str:
        self.scripts[path] = list(answers) or [200]
        return f"{self.base_url}{path}"

    def answer_for(self, path: str):
        with self.lock:
            script = self.scripts.get(path, [404])
            return script.pop(0) if len(script) > 1 else script[0]

    def at(self, path: str) -> list[Received]:
        return [item for item in self.received if item.path == path]


def _handler(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with receiver.lock:
                receiver.received.append(Received(self.path, dict(self.headers), body, time.monotonic()))
            answer = receiver.answer_for(self.path)
            if answer == "hang":
                receiver.released.wait(60)
                return
            if answer == "slow":
                time.sleep(0.2)
            content = b"x" * 200_000 if answer == "big" else f"answer {answer}".encode()
            self.send_response(answer if isinstance(answer, int) else 200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            try:
                self.wfile.write(content)
            except OSError:
                pass  # the sender read its 64 KiB and left

        def log_message(self, format, *args):
            pass

    return Handler


@pytest.fixture
def receiver():
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield receiver
    receiver.released.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def private_networks(settings):
    """The receiver is on 127.0.0.1: allowed, as on an on-premises installation."""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    settings.WEBHOOK_RETRY_DELAYS = (1, 1)
    return settings


@pytest.fixture
def webhooks_queue(redis_queue):
    """The real `webhooks` queue; the test Redis database is emptied before and after."""
    return django_rq.get_queue("webhooks")


def ended_export(tenant, status: str = "closed"):
    """An export job that has just ended with `status`, through the lifecycle: its deliveries
    are recorded (and, once committed, queued)."""
    from django.utils import timezone

    from exports.lifecycle import job_close, job_fail
    from exports.models import ExportJob, JobStatus

    job = ExportJob.objects.create(tenant=tenant, status=JobStatus.IN_PROGRESS, created_by="ci", started_at=timezone.now(),
                                   inputs={"folders": ["pricing"]}, file_filter="migrate", version_filter="all")
    if status == "closed":
        job_close(ExportJob, job.pk)
    else:
        job_fail(ExportJob, job.pk, "INTERNAL_ERROR", "It broke.")
    return job


def endpoint_for(tenant, url: str, events=None):
    return webhook_endpoint_create(tenant=tenant, url=url, events=events)


def docs_verifier():
    """`verify(secret, body, header)` as docs/webhooks.md writes it."""
    text = (ROOT / "docs" / "webhooks.md").read_text()
    code = re.search(r"<!-- webhook-verifier -->\n```python\n(.*?)\n```", text, re.S)[1]
    namespace: dict = {}
    exec(compile(code, "docs/webhooks.md", "exec"), namespace)
    return namespace["verify"]
