"""Streaming access to django-storages backends: no whole file is ever held in memory.

`storage.open(name, "rb")` on S3 downloads the whole object into RAM, so reads go to the
object's body stream there; the filesystem backend streams from the file as it is.
"""
import hashlib
import os
import tempfile
import zlib
from contextlib import contextmanager

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage
from django.utils.functional import cached_property

try:
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError
    from storages.backends.s3 import S3Storage
    from storages.utils import clean_name
except ImportError:  # pragma: no cover - django-storages and boto3 are pinned dependencies
    S3Storage = None
    Boto3Error = BotoCoreError = ClientError = OSError

# What a failing storage raises: OSError on disk; botocore's and boto3's own errors on S3
# (unreachable endpoint, NoSuchBucket, a failed upload), which are not OSError.
STORAGE_ERRORS = (OSError, BotoCoreError, ClientError, Boto3Error)


def open_stream(storage, name: str):
    """A readable binary stream of a stored file (close it when done)."""
    if S3Storage is not None and isinstance(storage, S3Storage):
        key = storage._normalize_name(clean_name(name))
        return storage.bucket.Object(key).get()["Body"]
    return storage.open(name, "rb")


def file_sha256(path) -> str:
    """The SHA-256 (hex) of a local file, read in chunks."""
    return file_digests(path)[0]


def file_digests(path) -> tuple[str, int]:
    """The SHA-256 (hex) and CRC-32 of a local file, in one read."""
    digest, crc = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            crc = zlib.crc32(chunk, crc)
    return digest.hexdigest(), crc


def iter_stored_file(storage, name: str, chunk_size: int = 1 << 20):
    """Yield a stored file in chunks, closing it at the end."""
    stream = open_stream(storage, name)
    try:
        while chunk := stream.read(chunk_size):
            yield chunk
    finally:
        stream.close()


@contextmanager
def local_path(storage, name: str, work_dir: str | None = None, prefix: str | None = None):
    """A local path of a stored file: the file itself on disk, else a streamed temporary copy
    (in work_dir, its name beginning with prefix)."""
    try:
        path = storage.path(name)
    except NotImplementedError:  # remote storage (S3) has no local path
        path = None
    if path is not None:
        yield path
        return
    if work_dir is not None:
        os.makedirs(work_dir, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=work_dir, prefix=prefix, suffix=".zip") as copy:
        for chunk in iter_stored_file(storage, name):
            copy.write(chunk)
        copy.flush()
        yield copy.name


@contextmanager
def uploaded_file_path(upload):
    """A local path of an uploaded file, whether Django kept it in memory or on disk."""
    if hasattr(upload, "temporary_file_path"):
        yield upload.temporary_file_path()
        return
    with tempfile.NamedTemporaryFile(suffix=".upload") as copy:
        for chunk in upload.chunks():
            copy.write(chunk)
        copy.flush()
        yield copy.name


class LocalFile(File):
    """A finished file on local disk; the filesystem backend moves it instead of copying."""

    def temporary_file_path(self):
        return self.file.name


def publish_local_file(storage, local_path: str, name: str) -> str:
    """Hand a complete local file to storage under `name`; answers the stored name.

    Nothing appears at `name` until the file is complete: the filesystem backend renames
    it into place and S3 completes the multipart upload only after the last part (boto3
    aborts the upload if a part fails). Across disks the filesystem backend copies instead,
    and a failed copy (disk full) would leave a truncated file: it is removed.
    """
    with open(local_path, "rb") as handle:
        try:
            return storage.save(name, LocalFile(handle, name=name))
        except BaseException:
            if isinstance(storage, FileSystemStorage):
                # Callers publish under names of their own (the job's id), so this is ours.
                storage.delete(name)
            raise


class PackageFileStorage(FileSystemStorage):
    """Filesystem storage for packages, in MEDIA_ROOT/packages unless given a location.

    Resolved lazily, so it follows MEDIA_ROOT when that changes (as tests do).
    """

    @cached_property
    def base_location(self):
        return self._value_or_setting(self._location, os.path.join(settings.MEDIA_ROOT, "packages"))
