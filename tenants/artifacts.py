"""Validation and demo generation for stored version artifacts.

Every service version owns two artifacts:

* an Excel workbook (``.xlsx`` / ``.xlsm``) uploaded by the modeller, and
* once compiled, a *Neuron package*: a ZIP holding a WebAssembly module plus
  a little glue (JavaScript loader, default validations, checksums).

This module decides whether a file on disk may be stored as one of those
artifacts, and can produce small, realistic, byte-for-byte deterministic demo
artifacts for seeding and tests.

It deliberately does not import Django (only the standard library, openpyxl
and wasmtime), so it can be tested without settings or a database.

Safety: both validators refuse files larger than ``MAX_ARTIFACT_BYTES`` before
opening them, and inspect the ZIP central directory (entry count, declared
sizes, compression ratios, member names) *before* any member is decompressed
or openpyxl is allowed to parse the archive.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
import random
import re
import warnings
import zipfile

import openpyxl
import wasmtime

__all__ = [
    "ArtifactError",
    "WORKBOOK_SUFFIXES",
    "MAX_ARTIFACT_BYTES",
    "validate_workbook",
    "validate_neuron_package",
    "make_demo_workbook",
    "make_demo_neuron",
    "make_demo_wasm",
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

# Fixed timestamps so demo artifacts are reproducible byte for byte.
_DEMO_DOC_TIME = datetime.datetime(2024, 1, 1, 0, 0, 0)
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)

_OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls / encrypted OOXML
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DRIVE_PREFIX = re.compile(r"^[A-Za-z]:")


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
    if not name:
        return "has an empty entry name"
    if "\x00" in name:
        return f"has an entry name containing a NUL byte ({_display(name)})"
    if name.startswith(("/", "\\")) or _DRIVE_PREFIX.match(name):
        return f"has an entry with an absolute path ({_display(name)})"
    if ".." in re.split(r"[\\/]", name):
        return f'has an entry that climbs out of the archive with ".." ({_display(name)})'
    return None


def _zip_problem(zf: zipfile.ZipFile) -> str | None:
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
    if _CONTROL_CHARS.search(original_name):
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

    try:
        with zipfile.ZipFile(path) as zf:
            reason = _zip_problem(zf)
            if reason:
                raise fail(reason)
            names = set(zf.namelist())
    except ArtifactError:
        raise
    except Exception as exc:  # corrupt central directory, I/O error, ...
        raise fail(f"the ZIP archive is damaged ({_first_line(exc)})") from None

    missing = [n for n in ("[Content_Types].xml", "xl/workbook.xml") if n not in names]
    if missing:
        raise fail(f"the ZIP archive has no {' or '.join(missing)}, so it is not an Excel file")

    try:
        with open(path, "rb") as fh, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wb = openpyxl.load_workbook(fh, read_only=True)
            try:
                sheet_count = len(wb.sheetnames)
            finally:
                wb.close()
    except Exception as exc:
        raise fail(f"Excel data could not be read ({type(exc).__name__}: {_first_line(exc)})") from None

    if sheet_count < 1:
        raise fail("it has no worksheets")


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

    valid: list[str] = []
    try:
        with zipfile.ZipFile(path) as zf:
            reason = _zip_problem(zf)
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
            for info in sorted(members, key=lambda i: i.filename):
                shown = _display(info.filename)
                if info.file_size > MAX_WASM_MEMBER_BYTES:
                    raise fail(
                        f"the module {shown} is larger than "
                        f"{MAX_WASM_MEMBER_BYTES // (1024 * 1024)} MiB"
                    )
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
                valid.append(info.filename)
    except ArtifactError:
        raise
    except Exception as exc:
        raise fail(f"the ZIP archive is damaged ({_first_line(exc)})") from None

    return sorted(valid)


# --------------------------------------------------------------------------
# deterministic ZIP writing
# --------------------------------------------------------------------------


def _zip_bytes(members: list[tuple[str, bytes]]) -> bytes:
    """Write ``members`` (in the given order) to a ZIP with fixed metadata."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, whatever the host OS
            info.external_attr = 0o100644 << 16  # regular file, rw-r--r--
            zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)
    return buf.getvalue()


def _clean_text(value: str, limit: int = 200) -> str:
    """Text that is safe in XML/JSON/WAT metadata (no control characters)."""
    return _CONTROL_CHARS.sub("", str(value))[:limit]


# --------------------------------------------------------------------------
# demo workbook
# --------------------------------------------------------------------------

_DEMO_INPUTS = [
    # (label, defined name, value, number format)
    ("Age", "Age", 35, "0"),
    ("Annual premium", "Premium", 1200.0, "#,##0.00"),
    ("Term (years)", "Term", 10, "0"),
    ("Discount rate", "DiscountRate", 0.03, "0.00%"),
]

_DEMO_OUTPUTS = [
    # (label, defined name, formula, number format)
    ("Total premium", "TotalPremium", "=Inputs!B3*Inputs!B4", "#,##0.00"),
    ("Monthly premium", "MonthlyPremium", "=Inputs!B3/12", "#,##0.00"),
    ("Age at maturity", "MaturityAge", "=Inputs!B2+Inputs!B4", "0"),
    ("Present value of premiums", "PresentValue",
     "=Inputs!B3*(1-(1+Inputs!B5)^(-Inputs!B4))/Inputs!B5", "#,##0.00"),
]


def make_demo_workbook(service: str, version: str) -> bytes:
    """A small Spark-style workbook; identical bytes for identical arguments.

    Sheet "Inputs" holds the input cells (column B), sheet "Outputs" holds
    formulas over them; every input and output cell has a workbook-scoped
    defined name (Age, Premium, Term, DiscountRate, TotalPremium, ...).
    The document title/subject/version carry the service and version.
    """
    from openpyxl.styles import Font
    from openpyxl.workbook.defined_name import DefinedName
    from openpyxl.xml.functions import tostring

    service_txt = _clean_text(service)
    version_txt = _clean_text(version)

    wb = openpyxl.Workbook()
    inputs = wb.active
    inputs.title = "Inputs"
    outputs = wb.create_sheet("Outputs")
    bold = Font(bold=True)

    inputs.append(["Input", "Value"])
    for label, name, value, fmt in _DEMO_INPUTS:
        inputs.append([label, value])
        inputs.cell(row=inputs.max_row, column=2).number_format = fmt
    outputs.append(["Output", "Value"])
    for label, name, formula, fmt in _DEMO_OUTPUTS:
        outputs.append([label, formula])
        outputs.cell(row=outputs.max_row, column=2).number_format = fmt
    for ws in (inputs, outputs):
        ws["A1"].font = bold
        ws["B1"].font = bold
        ws.column_dimensions["A"].width = 28
        ws.column_dimensions["B"].width = 14

    for row, (_label, name, _value, _fmt) in enumerate(_DEMO_INPUTS, start=2):
        wb.defined_names[name] = DefinedName(name, attr_text=f"Inputs!$B${row}")
    for row, (_label, name, _formula, _fmt) in enumerate(_DEMO_OUTPUTS, start=2):
        wb.defined_names[name] = DefinedName(name, attr_text=f"Outputs!$B${row}")

    props = wb.properties
    props.title = service_txt
    props.subject = f"{service_txt} {version_txt}".strip()
    props.version = version_txt
    props.description = f"Demo workbook for service {service_txt}, version {version_txt}"
    props.keywords = "spark demo"
    props.creator = "Spark export demo"
    props.lastModifiedBy = "Spark export demo"
    props.created = _DEMO_DOC_TIME
    props.modified = _DEMO_DOC_TIME

    raw = io.BytesIO()
    wb.save(raw)  # openpyxl stamps properties.modified with "now" here ...
    props.modified = _DEMO_DOC_TIME
    core_xml = tostring(props.to_tree())  # ... so docProps/core.xml is regenerated

    with zipfile.ZipFile(io.BytesIO(raw.getvalue())) as src:
        members = [
            (info.filename, core_xml if info.filename == "docProps/core.xml" else src.read(info))
            for info in src.infolist()
        ]
    return _zip_bytes(members)


# --------------------------------------------------------------------------
# demo Neuron package
# --------------------------------------------------------------------------

_PAD_TOKENS = (
    "rate", "age", "term", "premium", "sum_assured", "loading", "lapse",
    "mortality", "qx", "px", "table", "band", "smoker", "male", "female",
    "select", "ultimate", "commission", "expense", "reserve", "interest",
)
_DEMO_WASM_PAD_BYTES = 24 * 1024


def _demo_seed(service: str, version: str) -> int:
    digest = hashlib.sha256(f"{service}\x00{version}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big")


def _demo_padding(service: str, version: str, size: int = _DEMO_WASM_PAD_BYTES) -> bytes:
    """Deterministic, moderately compressible filler resembling a rate table."""
    rng = random.Random(_demo_seed(service, version))
    out = bytearray()
    while len(out) < size:
        pick = rng.random()
        if pick < 0.55:
            out += f"{rng.choice(_PAD_TOKENS)}[{rng.randrange(18, 100)}]={rng.random():.6f};".encode()
        elif pick < 0.8:
            out += f"{rng.choice(_PAD_TOKENS)}_{rng.choice(_PAD_TOKENS)}:{rng.randrange(1000)},".encode()
        else:
            out += bytes(rng.randrange(256) for _ in range(rng.randrange(4, 17)))
    return bytes(out[:size])


def _wat_string(data: bytes) -> str:
    """Encode bytes as a WAT string literal body (\\hh escapes where needed)."""
    parts = []
    for b in data:
        if 0x20 <= b < 0x7F and b not in (0x22, 0x5C):  # printable, not " or \
            parts.append(chr(b))
        else:
            parts.append(f"\\{b:02x}")
    return "".join(parts)


def make_demo_wasm(service: str, version: str) -> bytes:
    """A real WebAssembly module (compiled from WAT) unique to service+version.

    Exports ``calculate(f64, f64) -> f64`` (multiplies), ``memory`` and the
    globals ``meta_ptr``/``meta_len`` locating a ``service=...;version=...;``
    header at the start of a data segment, which is padded with ~24 KiB of
    deterministic rate-table-like bytes (so the module is ~25 KB).
    """
    header = f"service={_clean_text(service)};version={_clean_text(version)};".encode("utf-8")
    data = header + _demo_padding(service, version)
    pages = max(1, -(-len(data) // 65536))
    wat = (
        "(module\n"
        f'  (memory (export "memory") {pages})\n'
        '  (global (export "meta_ptr") i32 (i32.const 0))\n'
        f'  (global (export "meta_len") i32 (i32.const {len(header)}))\n'
        '  (func (export "calculate") (param f64 f64) (result f64)\n'
        "    local.get 0\n"
        "    local.get 1\n"
        "    f64.mul)\n"
        f'  (data (i32.const 0) "{_wat_string(data)}"))\n'
    )
    return bytes(wasmtime.wat2wasm(wat))


def _member_stem(service: str) -> str:
    """``service`` made safe as a bare ZIP member name stem."""
    stem = re.sub(r"[\\/\x00-\x1f\x7f]", "_", str(service)).strip()
    if stem in ("", ".", ".."):
        stem = "service"
    return stem[:100]


def make_demo_neuron(service: str, version: str) -> bytes:
    """A deterministic demo Neuron package (ZIP) for ``service``/``version``.

    Members (sorted): ``{service}.js``, ``{service}.wasm``,
    ``{service}DefaultValidations.json`` and ``checksums.md5`` (md5 of the
    other members, ``"<hash>  <name>"`` per line). Path separators and control
    characters in ``service`` are replaced by ``_`` in member names.
    """
    stem = _member_stem(service)
    service_txt = _clean_text(service)
    version_txt = _clean_text(version)

    wasm = make_demo_wasm(service, version)
    js = (
        f"// Neuron loader for {service_txt} {version_txt} (demo)\n"
        '"use strict";\n'
        f"const WASM_FILE = {json.dumps(stem + '.wasm')};\n"
        "async function load(fetchBytes) {\n"
        "  const { instance } = await WebAssembly.instantiate(await fetchBytes(WASM_FILE), {});\n"
        "  return {\n"
        "    calculate: (inputs) => ({\n"
        "      TotalPremium: instance.exports.calculate(inputs.Premium, inputs.Term),\n"
        "    }),\n"
        "  };\n"
        "}\n"
        "module.exports = { load };\n"
    ).encode("utf-8")
    validations = json.dumps(
        {
            "service": service_txt,
            "version": version_txt,
            "inputs": {
                "Age": {"type": "integer", "min": 18, "max": 99, "default": 35},
                "Premium": {"type": "number", "min": 0, "default": 1200.0},
                "Term": {"type": "integer", "min": 1, "max": 40, "default": 10},
                "DiscountRate": {"type": "number", "min": 0, "max": 1, "default": 0.03},
            },
        },
        indent=2,
        sort_keys=True,
    ).encode("utf-8") + b"\n"

    files = {
        f"{stem}.wasm": wasm,
        f"{stem}.js": js,
        f"{stem}DefaultValidations.json": validations,
    }
    checksums = "".join(
        f"{hashlib.md5(files[name], usedforsecurity=False).hexdigest()}  {name}\n" for name in sorted(files)
    ).encode("utf-8")
    files["checksums.md5"] = checksums
    return _zip_bytes([(name, files[name]) for name in sorted(files)])
