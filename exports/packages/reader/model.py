"""Shared pieces of the package reader: the exception, the data classes and message helpers."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from datetime import datetime

from tenants.naming import parse_semver

CHUNK_SIZE = 1 << 20

UPLOAD_PACKAGE = "Upload the package.zip produced by a 'migrate' export."
UNCHANGED = "Upload the package.zip produced by a 'migrate' export, unchanged."
EXPORT_AGAIN = "Export it again and upload the new package.zip."


class InvalidPackage(Exception):
    """The upload is not an importable package; str(e) names the problem and how to fix it."""


@dataclass(frozen=True)
class PackageFile:
    """One member of the package as listed in the manifest (and checked against the ZIP)."""

    path: str  # archive path
    size: int
    sha256: str
    crc32: int | None = None  # the ZIP's, which reading the member whole checks
    data_offset: int | None = None  # where its bytes start in the file
    stored: bool = False  # uncompressed in the ZIP: its bytes lie in the file as they are


@dataclass(frozen=True)
class VersionDetails:
    """What a version.json says about its version, as the catalog stores it ("" or None when absent)."""

    release_note: str = ""
    tags: tuple[str, ...] = ()
    effective_start_date: datetime | None = None
    effective_end_date: datetime | None = None
    compiler_version: str = ""
    author: str = ""


@dataclass(frozen=True)
class PackageVersion:
    """One service version of the package: its manifest row, version.json and files."""

    folder: str
    service: str
    service_id: str
    version: str
    version_id: str
    metadata: dict  # the parsed version.json
    workbook: PackageFile  # the original workbook entry
    neuron: PackageFile  # the neuron.zip entry
    details: VersionDetails = VersionDetails()  # version.json's catalog fields, checked

    @property
    def semver(self) -> tuple[int, int, int]:
        return parse_semver(self.version)


@dataclass(frozen=True)
class Package:
    """A checked package: its manifest and its versions sorted by folder, service and semver."""

    manifest: dict
    versions: list[PackageVersion]
    sha256: str | None = None  # of the whole file, when every member was hashed


# --------------------------------------------------------------------------- helpers


def show(value: object, limit: int = 120) -> str:
    """A quoted, escaped, length-limited rendering of an untrusted value for messages."""
    text = repr(value) if isinstance(value, str) else repr(str(value))
    if len(text) > limit:
        text = text[: limit - 4] + "...'"
    return text


def is_pure_directory(info: zipfile.ZipInfo) -> bool:
    return info.filename.endswith("/")


def corrupt(name: str) -> InvalidPackage:
    return InvalidPackage(
        f"The package is corrupt: entry {show(name)} is corrupt (its data does not match its "
        f"checksum or cannot be decompressed). {EXPORT_AGAIN}"
    )


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def hash_mismatch(path: str) -> InvalidPackage:
    return InvalidPackage(
        f"The package was modified: entry {show(path)} does not match its SHA-256 in the manifest: "
        f"the package was altered or damaged in transit. {EXPORT_AGAIN}"
    )
