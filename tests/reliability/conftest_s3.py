"""A real S3-compatible HTTP server (moto's standalone server) for storage tests, and helpers.

Imported by the S3 and storage-fault tests (not a conftest.py: that one belongs to the
reliability suite as a whole).
"""
import hashlib
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from django.conf import settings
from rq import SimpleWorker

from exports.models import ExportJob
from tests.waiting import wait_for

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"
# No retries: a dead endpoint fails the job in well under a second instead of ~10 s of backoff.
FAST_FAIL = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MotoServer:
    """`python -m moto.server` in its own process on a loopback port; stop() and start() again."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, 30, interval=0.05, message="moto_server to answer")

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {self.process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        """Kill the server at once (its in-memory objects go with it)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def ensure_running(self) -> None:
        if self.process is None or self.process.poll() is not None:
            self.start()

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )


@pytest.fixture(scope="session")
def moto_server():
    server = MotoServer()
    server.start()
    yield server
    server.stop()


def s3_options(server: MotoServer, bucket: str, **extra) -> dict:
    return {
        "bucket_name": bucket,
        "endpoint_url": server.url,
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
        "region_name": REGION,
        "signature_version": "s3v4",
        "file_overwrite": True,
        "default_acl": None,
        **extra,
    }


@dataclass
class S3Setup:
    server: MotoServer
    client: object
    bucket: str
    package_bucket: str

    def keys(self, bucket=None, prefix="") -> list[str]:
        listing = self.client.list_objects_v2(Bucket=bucket or self.bucket, Prefix=prefix)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def read(self, key, bucket=None) -> bytes:
        return self.client.get_object(Bucket=bucket or self.package_bucket, Key=key)["Body"].read()

    def multipart_uploads(self, bucket=None) -> list[dict]:
        return self.client.list_multipart_uploads(Bucket=bucket or self.package_bucket).get("Uploads", [])


def point_storages_at_s3(settings, server: MotoServer, bucket: str, package_bucket: str, **extra) -> None:
    """Both project storages on S3: catalog files at the bucket root, packages under packages/."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": s3_options(server, bucket, **extra)},
        "packages": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": s3_options(server, package_bucket, location="packages", **extra),
        },
    }


@pytest.fixture
def s3(moto_server, settings):
    """A fresh bucket for this test, with settings.STORAGES pointed at it; emptied afterwards."""
    moto_server.ensure_running()
    client = moto_server.client()
    bucket = f"spx-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    point_storages_at_s3(settings, moto_server, bucket, bucket)
    yield S3Setup(moto_server, client, bucket, bucket)
    _drop_buckets(moto_server)


def _drop_buckets(server: MotoServer) -> None:
    """Delete every bucket, so moto's memory does not grow from test to test."""
    if server.process is None or server.process.poll() is not None:
        return
    client = server.client()
    for bucket in client.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        for upload in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
            client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=name, Key=item["Key"])
        client.delete_bucket(Bucket=name)


# --- driving jobs through the API and a real worker ------------------------------------


def run_worker(queue) -> None:
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def post_export(api, capture, body) -> str:
    with capture(execute=True):
        response = api.post(api.api("export"), body, format="json")
    assert response.status_code == 200, response.json()
    return response.json()["id"]


def export_status(api, job_id) -> dict:
    return api.get(api.api(f"export/{job_id}/status")).json()


def package_key(job_id) -> str:
    job = ExportJob.objects.select_related("tenant").get(pk=job_id)
    return f"packages/{job.tenant.slug}/{job_id}.zip"


def work_files() -> list[Path]:
    work_dir = Path(settings.PACKAGE_WORK_DIR or Path(settings.MEDIA_ROOT) / ".partial")
    return list(work_dir.iterdir()) if work_dir.exists() else []


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
