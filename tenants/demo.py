"""Demo data: realistic, byte-for-byte deterministic workbooks and Neuron packages made with
real libraries (openpyxl, a WebAssembly module wasmtime accepts), and the demo catalog of
folders, services and versions that `make run` and `demo_seed` create."""
from __future__ import annotations

import datetime
import hashlib
import io
import json
import random
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import wasmtime
from openpyxl.styles import Font
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.xml.functions import tostring

from sparkexport.errors import InvalidRequest
from sparkexport.zip_paths import CONTROL_CHARACTERS
from tenants.models import MB, ServiceVersion, Tenant
from tenants.services import service_version_add

# Fixed timestamps so demo artifacts are reproducible byte for byte.
_DEMO_DOC_TIME = datetime.datetime(2024, 1, 1, 0, 0, 0)
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


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
    return CONTROL_CHARACTERS.sub("", str(value))[:limit]


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


def make_demo_workbook(service: str, version: str, calls: tuple[str, ...] = ()) -> bytes:
    """A small Spark-style workbook; identical bytes for identical arguments.

    Sheet "Inputs" holds the input cells (column B), sheet "Outputs" holds
    formulas over them; every input and output cell has a workbook-scoped
    defined name (Age, Premium, Term, DiscountRate, TotalPremium, ...).
    With `calls`, sheet "Xcalls" calls those services (`CS.SPARK_XCALL`) with the inputs.
    The document title/subject/version carry the service and version.
    """
    wb = openpyxl.Workbook()
    _fill_demo_sheets(wb)
    if calls:
        sheet = wb.create_sheet("Xcalls")
        sheet.append(["Service called", "Result"])
        for uri in calls:
            sheet.append([uri, f'=CS.SPARK_XCALL("{uri}", Inputs!$B$2:$B$5)'])
    service_txt, version_txt = _clean_text(service), _clean_text(version)
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
    return _deterministic_bytes(wb)


def _fill_demo_sheets(wb: openpyxl.Workbook) -> None:
    """Inputs (column B) and formulas over them, each cell with a workbook-scoped name."""
    inputs = wb.active
    inputs.title = "Inputs"
    outputs = wb.create_sheet("Outputs")
    inputs.append(["Input", "Value"])
    for label, _name, value, fmt in _DEMO_INPUTS:
        inputs.append([label, value])
        inputs.cell(row=inputs.max_row, column=2).number_format = fmt
    outputs.append(["Output", "Value"])
    for label, _name, formula, fmt in _DEMO_OUTPUTS:
        outputs.append([label, formula])
        outputs.cell(row=outputs.max_row, column=2).number_format = fmt
    for ws in (inputs, outputs):
        ws["A1"].font = Font(bold=True)
        ws["B1"].font = Font(bold=True)
        ws.column_dimensions["A"].width = 28
        ws.column_dimensions["B"].width = 14
    for sheet, rows in (("Inputs", _DEMO_INPUTS), ("Outputs", _DEMO_OUTPUTS)):
        for row, (_label, name, _value, _fmt) in enumerate(rows, start=2):
            wb.defined_names[name] = DefinedName(name, attr_text=f"{sheet}!$B${row}")


def _deterministic_bytes(wb: openpyxl.Workbook) -> bytes:
    raw = io.BytesIO()
    wb.save(raw)  # openpyxl stamps properties.modified with "now" here ...
    wb.properties.modified = _DEMO_DOC_TIME
    core_xml = tostring(wb.properties.to_tree())  # ... so docProps/core.xml is regenerated
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


def make_large_demo_neuron(service: str, version: str, extra_bytes: int) -> bytes:
    """The demo Neuron package plus `extra_bytes` of incompressible data (stored, not deflated),
    for packages that take long enough to package to be cancelled by hand."""
    with zipfile.ZipFile(io.BytesIO(make_demo_neuron(service, version))) as small:
        members = [(info.filename, small.read(info)) for info in small.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in [*members, ("assets/data.bin", random.Random(f"{service}:{version}").randbytes(extra_bytes))]:
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            stored = name.endswith(".bin")
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


# --------------------------------------------------------------------------
# the demo catalog
# --------------------------------------------------------------------------

FOLDER_NAMES = ["insurance", "pricing", "claims", "underwriting", "retirement", "lending"]
SERVICE_NAMES = ["term-life", "motor-quote", "home-cover", "risk-score", "annuity", "loan-offer"]
DRAFT = ("drafts", "draft-calculator", "0.1.0")  # a version that is never compiled
# An Xcall chain: a quote calls a rating, which calls a rate table (a version prefix).
CHAIN = (
    ("motor", "quote", "1.0.0", ("motor/rating",)),
    ("motor", "rating", "1.0.0", ("motor/rate-table[1]",)),
    ("motor", "rate-table", "1.0.0", ()),
    ("motor", "rate-table", "1.1.0", ()),
)
LARGE = ("large", "archive")  # versions of about LARGE_VERSION_MB each, when asked for
LARGE_VERSION_MB = 25


def _name(names: list[str], index: int) -> str:
    base = names[index % len(names)]
    return base if index < len(names) else f"{base}-{index // len(names) + 1}"


def demo_catalog_seed(*, tenant: Tenant, folders: int = 2, services: int = 2, versions: int = 3,
                      large_mb: int = 0) -> dict:
    """Create what is missing of the demo catalog; running it again adds nothing. With
    `large_mb`, folder `large` holds about that many megabytes of Neuron packages."""
    if min(folders, services, versions, large_mb) < 0:
        raise InvalidRequest("The numbers of folders, services, versions and megabytes may not be negative.")
    existing = set(
        ServiceVersion.objects.filter(service__folder__tenant=tenant).values_list(
            "service__folder__name", "service__name", "version"
        )
    )
    wanted = [
        DemoVersion(_name(FOLDER_NAMES, f), _name(SERVICE_NAMES, f * services + s), f"1.{v}.0")
        for f in range(folders)
        for s in range(services)
        for v in range(versions)
    ]
    wanted.append(DemoVersion(*DRAFT, compiled=False))
    wanted += [DemoVersion(folder, service, version, calls=calls) for folder, service, version, calls in CHAIN]
    large_versions = -(-large_mb // LARGE_VERSION_MB)
    wanted += [DemoVersion(*LARGE, f"1.{v}.0", extra_bytes=large_mb * MB // large_versions) for v in range(large_versions)]
    missing = [item for item in wanted if (item.folder, item.service, item.version) not in existing]
    with tempfile.TemporaryDirectory() as scratch:
        for item in missing:
            _add_demo_version(tenant, Path(scratch), item)
    return {"versions_added": len(missing), "versions_total": len(wanted)}


@dataclass(frozen=True)
class DemoVersion:
    folder: str
    service: str
    version: str
    compiled: bool = True
    calls: tuple[str, ...] = ()
    extra_bytes: int = 0


def _add_demo_version(tenant, scratch: Path, item: DemoVersion) -> None:
    folder, service, version = item.folder, item.service, item.version
    workbook = scratch / f"{service}.xlsx"
    workbook.write_bytes(make_demo_workbook(service, version, item.calls))
    neuron = None
    if item.compiled:
        neuron = scratch / "neuron.zip"
        extra = item.extra_bytes
        neuron.write_bytes(make_large_demo_neuron(service, version, extra) if extra else make_demo_neuron(service, version))
    service_version_add(
        tenant=tenant,
        folder=folder,
        service=service,
        version=version,
        workbook_path=workbook,
        neuron_path=neuron,
        release_note=f"Demo release {version} of {service}.",
        author="demo_seed",
    )
