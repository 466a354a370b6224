"""The uploaded package: within the tenant's limit, its digest, and read completely."""
from exports.packages.reader import InvalidPackage, Package, read_package
from sparkexport.errors import PayloadTooLarge, Unprocessable
from tenants.models import MB, Tenant

# The package's members may be at most this much larger, uncompressed, than the upload.
UNCOMPRESSED_FACTOR = 4


def upload_size_check(tenant: Tenant, size: int) -> None:
    if size > tenant.max_package_bytes:
        raise PayloadTooLarge(
            f"The uploaded file size of {size / MB:.1f} MB exceeds the upload limit of "
            f"{tenant.max_package_bytes / MB:.0f} MB. Export fewer services per package.",
            code="EXCEEDED_FILE_SIZE",
            details={"size_bytes": size, "limit_bytes": tenant.max_package_bytes},
        )


def upload_read(path: str, tenant: Tenant, *, hash_version_files: bool = True, file_sha256: str | None = None) -> Package:
    """The package at `path`, checked completely (exports/packages/reader/), or INVALID_IMPORT_ZIP.

    The worker, which checked it all at upload, leaves the versions' files to be checked as it
    stores them (`hash_version_files=False`): one pass over them, not two. `file_sha256`: the
    file's, when a request's upload handler computed it (sparkexport/uploads.py).
    """
    try:
        return read_package(path, max_uncompressed_bytes=tenant.max_package_bytes * UNCOMPRESSED_FACTOR,
                            hash_version_files=hash_version_files, file_sha256=file_sha256)
    except InvalidPackage as exc:
        raise Unprocessable(str(exc), code="INVALID_IMPORT_ZIP") from None
