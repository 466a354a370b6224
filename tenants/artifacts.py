"""Validation of stored version artifacts.

Every service version owns two artifacts:

* an Excel workbook (``.xlsx`` / ``.xlsm``) uploaded by the modeller, and
* once compiled, a *Neuron package*: a ZIP holding a WebAssembly module plus
  a little glue (JavaScript loader, default validations, checksums).

This module decides whether a file on disk may be stored as one of those
artifacts (demo artifacts are made by tenants/demo.py). It does not import Django
(only the standard library, openpyxl and wasmtime), so it can be tested without
settings or a database.

Safety: both validators refuse files larger than ``MAX_ARTIFACT_BYTES`` before
opening them, and inspect the ZIP central directory (entry count, declared
sizes, compression ratios, member names) *before* any member is decompressed
or openpyxl is allowed to parse the archive.
"""

from __future__ import annotations

import os
import warnings
import zipfile

import openpyxl
import wasmtime

from sparkexport.zip_paths import CONTROL_CHARACTERS, entry_path_problem

__all__ = [
    "ArtifactError",
    "WORKBOOK_SUFFIXES",
    "MAX_ARTIFACT_BYTES",
    "validate_workbook",
    "validate_neuron_package",
]

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
MAX_ARTIFACT_BYTES = 200 * 1024 * 1024  # bigger files are refused before opening

# ZIP pre-checks (applied to workbooks and Neuron packages alike).
MAX_ZIP_ENTRIES = 10_000
MAX_ZIP_TOTAL_UNCOMPRESSED = 1024 * 1024 * 1024  # 1 GiB, sum of declared sizes
MAX_COMPRESSION_RATIO = 100  # per entry ...
RATIO_CHECK_MIN_BYTES = 1024 * 1024  # ... for entries bigger than 1 MiB
MAX_WASM_MEMBER_BYTES = 200 * 1024 * 1024
MAX_ORIGINAL_NAME_CHARS = 100

INVALID_WORKBOOK = "INVALID_WORKBOOK"
INVALID_NEURON_PACKAGE = "INVALID_NEURON_PACKAGE"

_OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls / encrypted OOXML


class ArtifactError(ValueError):
    """A file that cannot be stored as a workbook or Neuron package.

    ``str(e)`` says what is wrong and how to fix it; ``e.code`` is a stable
    UPPER_SNAKE identifier (``"INVALID_WORKBOOK"`` or
    ``"INVALID_NEURON_PACKAGE"``).
    """

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code

    @property
    def message(self) -> str:
        return str(self)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _display(name: str, limit: int = 120) -> str:
    """A printable, quoted, length-limited rendering of a user-supplied name."""
    text = str(name).encode("unicode_escape").decode("ascii")
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f'"{text}"'


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0].strip() if text else ""
    if not line:
        line = type(exc).__name__
    if len(line) > limit:
        line = line[: limit - 3] + "..."
    return line


def _unsafe_member_reason(name: str) -> str | None:
    """Why a ZIP member name is unsafe to handle, or None if it is fine."""
    problem = entry_path_problem(name)
    return f"has an unsafe entry name {_display(name)}: {problem}" if problem else None


def zip_problem(zf: zipfile.ZipFile) -> str | None:
    """Zip-bomb / zip-slip pre-checks on the central directory only.

    Nothing is decompressed here. Returns a human-readable reason, or None.
    """
    infos = zf.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        return f"it has {len(infos):,} entries (at most {MAX_ZIP_ENTRIES:,} are allowed)"
    total = 0
    seen: set[str] = set()
    for info in infos:
        reason = _unsafe_member_reason(info.filename)
        if reason:
            return "it " + reason
        if info.filename in seen:
            return f"it has the entry {_display(info.filename)} more than once"
        seen.add(info.filename)
        if info.file_size < 0 or info.compress_size < 0:
            return f"the entry {_display(info.filename)} declares a negative size"
        total += info.file_size
        if total > MAX_ZIP_TOTAL_UNCOMPRESSED:
            return "it would expand to more than 1 GiB when unpacked"
        if info.file_size > RATIO_CHECK_MIN_BYTES:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > MAX_COMPRESSION_RATIO:
                return (
                    f"the entry {_display(info.filename)} is compressed {ratio:,.0f}:1 "
                    f"(more than {MAX_COMPRESSION_RATIO}:1 looks like a zip bomb)"
                )
    return None


def _size_problem(path: str | os.PathLike) -> str | None:
    """Check the file exists and is not too big, without opening it as a ZIP."""
    try:
        if not os.path.isfile(path):
            return "the file does not exist or is not a regular file"
        size = os.path.getsize(path)
    except (OSError, ValueError, TypeError) as exc:
        return f"the file could not be read ({_first_line(exc)})"
    if size == 0:
        return "the file is empty"
    if size > MAX_ARTIFACT_BYTES:
        return (
            f"the file is {size / (1024 * 1024):,.1f} MiB "
            f"(at most {MAX_ARTIFACT_BYTES // (1024 * 1024)} MiB is allowed)"
        )
    return None


def _is_zip(path: str | os.PathLike) -> bool:
    try:
        return zipfile.is_zipfile(path)
    except (OSError, ValueError, TypeError):
        return False


def _starts_with(path: str | os.PathLike, magic: bytes) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(len(magic)) == magic
    except OSError:
        return False


# --------------------------------------------------------------------------
# workbook validation
# --------------------------------------------------------------------------


def _original_name_problem(original_name: object) -> str | None:
    if not isinstance(original_name, str) or not original_name:
        return "the file has no name"
    if len(original_name) > MAX_ORIGINAL_NAME_CHARS:
        return f"the file name is longer than {MAX_ORIGINAL_NAME_CHARS} characters"
    if CONTROL_CHARACTERS.search(original_name):
        return "the file name contains control characters"
    if "/" in original_name or "\\" in original_name:
        return "the file name contains a folder path (/ or \\)"
    if ".." in original_name:
        return 'the file name contains ".."'
    lowered = original_name.lower()
    suffix = next((s for s in WORKBOOK_SUFFIXES if lowered.endswith(s)), None)
    if suffix is None:
        ext = os.path.splitext(original_name)[1].lower()
        if ext == ".xls":
            return "it is an old-style .xls file, which is not supported"
        if ext:
            return f"files ending in {ext} are not Excel workbooks"
        return "the file name has no .xlsx or .xlsm extension"
    if not original_name[: -len(suffix)].strip():
        return f"the file name is only the extension {suffix}"
    return None


def validate_workbook(path: str | os.PathLike, original_name: str) -> None:
    """Raise ArtifactError(INVALID_WORKBOOK) unless ``path`` is a usable workbook.

    ``original_name`` is the name the user uploaded the file as; it must be a
    bare ``.xlsx``/``.xlsm`` file name. The file on disk (``path``) may have any
    name (e.g. a temporary upload file): openpyxl is handed an open file
    object, so its own extension check does not apply.
    """
    shown = _display(original_name if isinstance(original_name, str) else "")
    upload_hint = "Upload the .xlsx or .xlsm file saved by Excel."

    def fail(reason: str, hint: str = upload_hint) -> ArtifactError:
        return ArtifactError(f"{shown} is not an Excel workbook: {reason}. {hint}", INVALID_WORKBOOK)

    reason = _original_name_problem(original_name)
    if reason:
        raise fail(
            reason,
            "Upload a workbook saved by Excel as .xlsx (or .xlsm if it has macros), "
            "with a plain file name of at most "
            f"{MAX_ORIGINAL_NAME_CHARS} characters.",
        )

    reason = _size_problem(path)
    if reason:
        raise fail(reason)

    if not _is_zip(path):
        if _starts_with(path, _OLE_SIGNATURE):
            raise fail(
                "it is an old-style .xls file or a password-protected workbook",
                "Remove the password and save it in Excel as .xlsx or .xlsm, then upload that file.",
            )
        raise fail("it is not a ZIP file")

    names = _checked_zip_names(path, fail)
    missing = [n for n in ("[Content_Types].xml", "xl/workbook.xml") if n not in names]
    if missing:
        raise fail(f"the ZIP archive has no {' or '.join(missing)}, so it is not an Excel file")
    if _sheet_count(path, fail) < 1:
        raise fail("it has no worksheets")


def _checked_zip_names(path, fail) -> set[str]:
    """The member names of a ZIP that passed the central-directory checks."""
    try:
        with zipfile.ZipFile(path) as zf:
            reason = zip_problem(zf)
            if reason:
                raise fail(reason)
            return set(zf.namelist())
    except ArtifactError:
        raise
    except Exception as exc:  # corrupt central directory, I/O error, ...
        raise fail(f"the ZIP archive is damaged ({_first_line(exc)})") from None


def _sheet_count(path, fail) -> int:
    try:
        with open(path, "rb") as fh, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wb = openpyxl.load_workbook(fh, read_only=True)
            try:
                return len(wb.sheetnames)
            finally:
                wb.close()
    except Exception as exc:
        raise fail(f"Excel data could not be read ({type(exc).__name__}: {_first_line(exc)})") from None


# --------------------------------------------------------------------------
# Neuron package validation
# --------------------------------------------------------------------------


def validate_neuron_package(path: str | os.PathLike) -> list[str]:
    """Validate a Neuron package and return the sorted names of its .wasm modules.

    Every member whose name ends in ``.wasm`` (any folder depth, any case) is
    checked with wasmtime's validator; a single invalid module rejects the
    package. Raises ArtifactError(INVALID_NEURON_PACKAGE) on any problem.
    """
    upload_hint = "Upload the Neuron package .zip exactly as downloaded from Spark."

    def fail(reason: str, hint: str = upload_hint) -> ArtifactError:
        return ArtifactError(f"The Neuron package is not valid: {reason}. {hint}", INVALID_NEURON_PACKAGE)

    reason = _size_problem(path)
    if reason:
        raise fail(reason)
    if not _is_zip(path):
        raise fail("it is not a ZIP file")

    try:
        engine = wasmtime.Engine()
    except Exception as exc:  # pragma: no cover - broken wasmtime install
        raise fail(f"the WebAssembly validator is unavailable ({_first_line(exc)})",
                   "Try again later or contact the administrator.") from None

    try:
        with zipfile.ZipFile(path) as zf:
            reason = zip_problem(zf)
            if reason:
                raise fail(reason)
            members = [
                info for info in zf.infolist()
                if not info.is_dir() and info.filename.lower().endswith(".wasm")
            ]
            if not members:
                raise fail(
                    "it contains no WebAssembly module (no entry ending in .wasm)",
                    "Compile the service in Spark and upload the Neuron package it produces.",
                )
            for info in members:
                _check_wasm_member(zf, info, engine, fail)
    except ArtifactError:
        raise
    except Exception as exc:
        raise fail(f"the ZIP archive is damaged ({_first_line(exc)})") from None
    return sorted(info.filename for info in members)


def _check_wasm_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, engine, fail) -> None:
    shown = _display(info.filename)
    if info.file_size > MAX_WASM_MEMBER_BYTES:
        raise fail(f"the module {shown} is larger than {MAX_WASM_MEMBER_BYTES // (1024 * 1024)} MiB")
    try:
        with zf.open(info) as fh:
            data = fh.read(info.file_size + 1)
    except Exception as exc:
        raise fail(f"the module {shown} could not be unpacked ({_first_line(exc)})") from None
    if len(data) != info.file_size:
        raise fail(f"the module {shown} does not match its declared size")
    try:
        wasmtime.Module.validate(engine, data)
    except Exception as exc:
        raise fail(
            f"the module {shown} is not valid WebAssembly ({_first_line(exc)})",
            "Recompile the service in Spark and upload the new Neuron package.",
        ) from None
