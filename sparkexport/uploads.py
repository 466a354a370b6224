"""Uploads that know their SHA-256, computed as the bytes arrive (settings.FILE_UPLOAD_HANDLERS).

An import records the uploaded file's SHA-256 (`upload_sha256`, the request's fingerprint, the
versions' lineage). Computed while Django receives the file, it is done when the last byte is,
where reading the received file again for it would cost 0.12 s per 200 MB after the last byte
(docs/performance.md, "Import throughput"). Django's two handlers, each hashing what it keeps;
the file they answer carries `sha256`.
"""
import hashlib

from django.core.files.uploadhandler import MemoryFileUploadHandler, TemporaryFileUploadHandler


class _Hashing:
    """Hashes the chunks its handler keeps (`keeps_chunks`) and hands the digest to its file."""

    def new_file(self, *args, **kwargs):
        self.sha256 = hashlib.sha256()
        super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data, start):
        if self.keeps_chunks():
            self.sha256.update(raw_data)
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size):
        upload = super().file_complete(file_size)
        if upload is not None:
            upload.sha256 = self.sha256.hexdigest()
        return upload


class HashingMemoryFileUploadHandler(_Hashing, MemoryFileUploadHandler):
    """A small file, kept in memory (when the request is under FILE_UPLOAD_MAX_MEMORY_SIZE)."""

    def keeps_chunks(self) -> bool:
        return self.activated


class HashingTemporaryFileUploadHandler(_Hashing, TemporaryFileUploadHandler):
    """Any other file, written to a temporary file as it arrives."""

    def keeps_chunks(self) -> bool:
        return True
