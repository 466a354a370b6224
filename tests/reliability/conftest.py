"""Real processes for the reliability suite: a private redis-server, gunicorn and rqworkers
pointed at the test database, and the helpers to inject faults into them.

Every process is started by a fixture and stopped, by its own PID, at teardown (before the
transactional test database is flushed).
"""
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import redis
from django.conf import settings
from rq import Queue, Worker

from exports.models import ACTIVE_STATES, ExportJob
from tests.e2e.conftest import ROOT, process_env
from tests.factories import ServiceVersionFactory, make_api_key
from tests.waiting import wait_for

SLOW_WORKER = Path(__file__).with_name("slow_worker.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


def child_pids(pid: int) -> list[int]:
    """PIDs whose parent is `pid` (an rqworker's work horse, which RQ moves to its own group)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            children.append(int(entry.name))
    return children


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


class PrivateRedis:
    """A redis-server of our own on a free loopback port, without persistence: stop() is an
    outage, start() brings back an empty server on the same port (or the data of a dump
    taken earlier with save_dump(), as a restore from backup would)."""

    def __init__(self, work_dir: Path):
        self.port = free_port()
        self.work_dir = work_dir
        self.dump = work_dir / f"dump-{self.port}.rdb"
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self, *, dump: Path | None = None, replica_of: "PrivateRedis | None" = None):
        self.dump.unlink(missing_ok=True)
        if dump is not None:
            shutil.copy(dump, self.dump)
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.work_dir), "--dbfilename", self.dump.name,
                "--protected-mode", "yes"]
        if replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(replica_of.port)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.ping, 10, message=f"redis-server on port {self.port}")

    def save_dump(self) -> Path:
        """A copy of the server's data as it is now."""
        self.connection().save()
        copy = self.work_dir / f"backup-{time.monotonic_ns()}.rdb"
        shutil.copy(self.dump, copy)
        return copy

    def stop(self):
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def ping(self) -> bool:
        try:
            return redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
        except redis.RedisError:
            return False

    def connection(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


class TcpProxy:
    """127.0.0.1:<port> forwarded to a Redis; switch() points it at another one and drops every
    open connection, as a failover behind a virtual address does, and drop() alone is an idle
    disconnect by a NAT or a load balancer."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        self._close(source, sink)

    def _close(self, *sockets):
        with self._lock:
            for sock in sockets:
                self._open.discard(sock)
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def drop(self):
        with self._lock:
            sockets = list(self._open)
        self._close(*sockets)

    def switch(self, target_port: int):
        self.target_port = target_port
        self.drop()

    def close(self):
        self._server.close()
        self.drop()


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


class Processes:
    """Starts gunicorn and rqworkers pointed at this test's database, media and a Redis URL."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.started: list[tuple[subprocess.Popen, object]] = []

    def _popen(self, name: str, args: list[str], env: dict) -> subprocess.Popen:
        log = open(self.tmp_path / f"{name}-{len(self.started)}.log", "w")
        process = subprocess.Popen(
            args, cwd=ROOT, env={**process_env(), **env}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a fault can kill the group
        )
        self.started.append((process, log))
        return process

    def server(self, *, redis_url: str | None = None, workers: int = 1, threads: int = 4, **env) -> "Server":
        port = free_port()
        process = self._popen(
            "gunicorn",
            [sys.executable, "-m", "gunicorn", "sparkexport.wsgi", "--bind", f"127.0.0.1:{port}",
             "--workers", str(workers), "--threads", str(threads), "--timeout", "60",
             "--graceful-timeout", "5"],
            {"REDIS_URL": redis_url or os.environ["REDIS_URL"], **env},
        )
        server = Server(process, f"http://127.0.0.1:{port}")
        wait_for(server.healthy, 30, interval=0.2, message="gunicorn to answer /health")
        return server

    def worker(self, *, redis_url: str | None = None, slow_read_seconds: float = 0, entry_log: Path | None = None,
               webhooks: bool = False, **env) -> subprocess.Popen:
        """`manage.py rqworker exports imports` (with `webhooks`: also the webhooks queue, and RQ's
        scheduler, a child process of its own); with slow_read_seconds, through slow_worker.py,
        which sleeps that long before every read of a stored file (a slow disk or S3)."""
        redis_url = redis_url or os.environ["REDIS_URL"]
        if slow_read_seconds:
            args = [sys.executable, str(SLOW_WORKER)]
            env = {**env, "SPX_SLOW_READ_SECONDS": str(slow_read_seconds), "SPX_ENTRY_LOG": str(entry_log or "")}
        else:
            args = [sys.executable, "manage.py", "rqworker", "exports", "imports"]
            args += ["webhooks", "--with-scheduler"] if webhooks else []
        process = self._popen("worker", args, {"REDIS_URL": redis_url, **env})
        connection = redis.Redis.from_url(redis_url)
        wait_for(
            lambda: any(w.pid == process.pid for w in Worker.all(connection=connection)) or process.poll() is not None,
            30, message="the rqworker to register",
        )
        assert process.poll() is None, "the rqworker exited at start"
        return process

    def stop_all(self):
        for process, log in reversed(self.started):
            horses = child_pids(process.pid) if process.poll() is None else []
            stop_process(process)
            for horse in horses:
                with _suppress_lookup():
                    os.killpg(horse, signal.SIGKILL)
            log.close()


class _suppress_lookup:
    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        return exc_type is not None and issubclass(exc_type, ProcessLookupError)


@pytest.fixture
def processes(transactional_db, tmp_path):
    """Depends on the transactional database so its processes stop before the flush."""
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


class Server:
    def __init__(self, process: subprocess.Popen, base_url: str):
        self.process = process
        self.base_url = base_url

    def healthy(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"gunicorn exited with {self.process.returncode}")
        try:
            return httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


class TenantAPI:
    """HTTP calls to a live server with one tenant's API key."""

    def __init__(self, base_url: str, tenant_slug: str, key: str, timeout: float = 30):
        self.base = f"{base_url}/{tenant_slug}/api/v4"
        self.headers = {"x-synthetic-key": key, "x-tenant-name": tenant_slug}
        self.client = httpx.Client(headers=self.headers, timeout=timeout)

    def post_export(self, body=None) -> httpx.Response:
        return self.client.post(f"{self.base}/export", json=body or {"inputs": {"folders": ["pricing"]}})

    def status(self, job_id) -> httpx.Response:
        return self.client.get(f"{self.base}/export/{job_id}/status")

    def tenant_status(self) -> httpx.Response:
        return self.client.get(f"{self.base}/export/status")

    def cancel(self, job_id) -> httpx.Response:
        return self.client.patch(f"{self.base}/export/{job_id}", json={"export_status": "cancelled"})

    def wait_status(self, job_id, statuses, timeout: float) -> dict:
        def done():
            body = self.status(job_id).json()
            return body if body["status"] in statuses else None

        return wait_for(done, timeout, interval=0.2, message=f"job {job_id} to reach {statuses}")

    def download_and_verify(self, status: dict) -> bytes:
        [file] = status["outputs"]["files"]
        response = self.client.get(file["file"])
        assert response.status_code == 200, response.text
        assert hashlib.sha256(response.content).hexdigest() == file["file_hash"]
        return response.content


def seed_catalog(tenant, versions: int, folder: str = "pricing") -> None:
    """`versions` compiled versions (a real workbook and Neuron package each) in one folder."""
    for n in range(versions):
        ServiceVersionFactory(
            service__folder__tenant=tenant, service__folder__name=folder, service__name=f"svc{n % 4}",
            version=f"1.{n // 4}.0",
        )


def tenant_api(server: Server, tenant) -> TenantAPI:
    return TenantAPI(server.base_url, tenant.slug, make_api_key(tenant, name=f"key-{time.monotonic_ns()}"))


def active_jobs(tenant) -> int:
    return ExportJob.objects.filter(tenant=tenant, status__in=ACTIVE_STATES).count()


def work_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / ".partial"


def final_key(tenant, job_id) -> Path:
    return Path(settings.MEDIA_ROOT) / "packages" / tenant.slug / f"{job_id}.zip"


def rq_queue(redis_url: str | None = None, name: str = "exports") -> Queue:
    return Queue(name, connection=redis.Redis.from_url(redis_url or os.environ["REDIS_URL"]))


def post_concurrently(api: TenantAPI, count: int, timeout: float = 30) -> list[httpx.Response | Exception]:
    """`count` POST export at once: threads released together by a barrier, each with its own
    connection; answers the responses (or the exceptions) in no particular order."""
    barrier = threading.Barrier(count, timeout=timeout)
    results: list = []
    lock = threading.Lock()

    def post():
        with httpx.Client(headers=api.headers, timeout=timeout) as client:
            barrier.wait()
            try:
                result = client.post(f"{api.base}/export", json={"inputs": {"folders": ["pricing"]}})
            except httpx.HTTPError as exc:
                result = exc
        with lock:
            results.append(result)

    threads = [threading.Thread(target=post, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout + 5)
    assert len(results) == count, f"only {len(results)} of {count} requests came back"
    return results
