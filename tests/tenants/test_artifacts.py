"""Tests for tenants.artifacts (pure Python: no Django settings, no database)."""

import hashlib
import io
import time
import zipfile

import openpyxl
import pytest
import wasmtime

from tenants import artifacts
from tenants.artifacts import (
    MAX_ARTIFACT_BYTES,
    WORKBOOK_SUFFIXES,
    ArtifactError,
    validate_neuron_package,
    validate_workbook,
)
from tenants.demo import make_demo_neuron, make_demo_wasm, make_demo_workbook

XLSX_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
XLSM_MAIN = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _zip(members, compression=zipfile.ZIP_DEFLATED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def _workbook_members():
    with zipfile.ZipFile(io.BytesIO(make_demo_workbook("svc", "1.0.0"))) as zf:
        return [(info.filename, zf.read(info)) for info in zf.infolist()]


def _forbid_openpyxl(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("openpyxl must not be called")

    monkeypatch.setattr(artifacts.openpyxl, "load_workbook", boom)


# ---------------------------------------------------------------- constants


def test_public_constants_and_error_type():
    assert WORKBOOK_SUFFIXES == (".xlsx", ".xlsm")
    assert MAX_ARTIFACT_BYTES == 200 * 1024 * 1024
    err = ArtifactError("x is bad. Do y.", "INVALID_WORKBOOK")
    assert isinstance(err, ValueError)
    assert err.code == "INVALID_WORKBOOK"
    assert str(err) == "x is bad. Do y."


# ---------------------------------------------------------------- demo workbook


def test_demo_workbook_is_valid_and_has_inputs_outputs_formulas(tmp_path):
    data = make_demo_workbook("svc", "1.0.0")
    path = _write(tmp_path, "upload.tmp", data)  # stored name need not end in .xlsx
    assert validate_workbook(path, "Pricing Model.xlsx") is None
    assert validate_workbook(str(path), "PRICING.XLSX") is None

    wb = openpyxl.load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["Inputs", "Outputs"]
    assert wb["Inputs"]["A2"].value == "Age"
    assert wb["Inputs"]["B2"].value == 35
    formulas = [c.value for row in wb["Outputs"].iter_rows(min_row=2, max_col=2) for c in row
                if isinstance(c.value, str) and c.value.startswith("=")]
    assert "=Inputs!B3*Inputs!B4" in formulas
    assert all("Inputs!" in f for f in formulas)
    names = wb.defined_names
    for name in ("Age", "Premium", "Term", "TotalPremium", "MonthlyPremium"):
        assert name in names
    assert names["Age"].attr_text == "Inputs!$B$2"
    assert names["TotalPremium"].attr_text == "Outputs!$B$2"
    assert wb.properties.title == "svc"
    assert wb.properties.version == "1.0.0"
    assert wb.properties.created.year == 2024
    assert wb.properties.modified.year == 2024


def test_demo_artifacts_are_deterministic_across_time():
    wb1, nn1 = make_demo_workbook("svc", "1.0.0"), make_demo_neuron("svc", "1.0.0")
    time.sleep(1.1)  # openpyxl/zipfile would otherwise stamp a different second
    wb2, nn2 = make_demo_workbook("svc", "1.0.0"), make_demo_neuron("svc", "1.0.0")
    assert wb1 == wb2
    assert nn1 == nn2
    for blob in (wb1, nn1):
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
            assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_DEFLATED}
    # different arguments -> different artifacts
    assert make_demo_workbook("svc", "1.0.1") != wb1
    assert make_demo_neuron("svc", "1.0.1") != nn1


# ---------------------------------------------------------------- demo neuron


def test_demo_neuron_is_valid_and_spark_shaped(tmp_path):
    data = make_demo_neuron("svc", "1.0.0")
    path = _write(tmp_path, "svc.zip", data)
    assert validate_neuron_package(path) == ["svc.wasm"]

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        assert names == sorted(names)
        assert set(names) == {"svc.wasm", "svc.js", "svcDefaultValidations.json", "checksums.md5"}
        wasm_info = zf.getinfo("svc.wasm")
        assert wasm_info.compress_type == zipfile.ZIP_DEFLATED
        assert 20_000 <= wasm_info.file_size <= 40_000
        assert wasm_info.compress_size < wasm_info.file_size  # compressible-ish ...
        assert wasm_info.compress_size > wasm_info.file_size // 10  # ... but not trivially
        lines = zf.read("checksums.md5").decode().splitlines()
        expected = [f"{hashlib.md5(zf.read(n)).hexdigest()}  {n}"
                    for n in sorted(set(names) - {"checksums.md5"})]
        assert lines == expected
        wasm = zf.read("svc.wasm")
    assert wasm == make_demo_wasm("svc", "1.0.0")


def test_demo_wasm_runs_and_embeds_service_and_version():
    wasm = make_demo_wasm("svc", "2.1.0")
    assert wasm[:4] == b"\0asm"
    assert b"service=svc;version=2.1.0;" in wasm
    assert make_demo_wasm("svc", "2.1.1") != wasm
    store = wasmtime.Store()
    instance = wasmtime.Instance(store, wasmtime.Module(store.engine, wasm), [])
    exports = instance.exports(store)
    assert exports["calculate"](store, 3.0, 4.5) == 13.5
    header_len = exports["meta_len"].value(store)
    header = exports["memory"].read(store, 0, header_len)
    assert bytes(header) == b"service=svc;version=2.1.0;"


def test_demo_neuron_sanitises_unsafe_service_names(tmp_path):
    path = _write(tmp_path, "n.zip", make_demo_neuron("../a/b", "1"))
    assert validate_neuron_package(path) == [".._a_b.wasm"]


# ---------------------------------------------------------------- neuron validation


def test_neuron_rejects_garbage_wasm(tmp_path):
    path = _write(tmp_path, "n.zip", _zip([("x.wasm", b"\0asm" + b"junk" * 50)]))
    with pytest.raises(ArtifactError) as exc:
        validate_neuron_package(path)
    assert exc.value.code == "INVALID_NEURON_PACKAGE"
    assert "x.wasm" in str(exc.value)
    assert "not valid WebAssembly" in str(exc.value)


def test_neuron_rejects_package_when_any_module_is_invalid(tmp_path):
    good = make_demo_wasm("svc", "1")
    path = _write(tmp_path, "n.zip", _zip([("a.wasm", good), ("lib/b.wasm", b"not wasm")]))
    with pytest.raises(ArtifactError) as exc:
        validate_neuron_package(path)
    assert "lib/b.wasm" in str(exc.value)


def test_neuron_finds_modules_at_any_depth_sorted(tmp_path):
    good = make_demo_wasm("svc", "1")
    path = _write(tmp_path, "n.zip", _zip([("z.wasm", good), ("build/A.WASM", good), ("readme.txt", b"hi")]))
    assert validate_neuron_package(path) == ["build/A.WASM", "z.wasm"]


def test_neuron_without_wasm_is_rejected(tmp_path):
    path = _write(tmp_path, "n.zip", _zip([("svc.js", b"//"), ("checksums.md5", b"")]))
    with pytest.raises(ArtifactError) as exc:
        validate_neuron_package(path)
    assert exc.value.code == "INVALID_NEURON_PACKAGE"
    assert ".wasm" in str(exc.value)


def test_not_a_zip_is_rejected_by_both_validators(tmp_path):
    path = _write(tmp_path, "plain", b"name,age\nbob,42\n")
    with pytest.raises(ArtifactError) as exc:
        validate_workbook(path, "model.xlsx")
    assert exc.value.code == "INVALID_WORKBOOK"
    assert str(exc.value) == (
        '"model.xlsx" is not an Excel workbook: it is not a ZIP file. '
        "Upload the .xlsx or .xlsm file saved by Excel."
    )
    with pytest.raises(ArtifactError) as exc:
        validate_neuron_package(path)
    assert exc.value.code == "INVALID_NEURON_PACKAGE"
    assert "not a ZIP file" in str(exc.value)


def test_missing_and_empty_files_are_rejected(tmp_path):
    with pytest.raises(ArtifactError) as exc:
        validate_workbook(tmp_path / "nope", "model.xlsx")
    assert exc.value.code == "INVALID_WORKBOOK"
    with pytest.raises(ArtifactError) as exc:
        validate_neuron_package(_write(tmp_path, "empty", b""))
    assert exc.value.code == "INVALID_NEURON_PACKAGE"
    assert "empty" in str(exc.value)


def test_oversized_files_are_refused_before_opening(tmp_path, monkeypatch):
    path = _write(tmp_path, "big.xlsx", make_demo_workbook("svc", "1"))
    monkeypatch.setattr(artifacts, "MAX_ARTIFACT_BYTES", 1000)

    def no_zip(*args, **kwargs):
        raise AssertionError("file must not be opened")

    monkeypatch.setattr(artifacts.zipfile, "is_zipfile", no_zip)
    with pytest.raises(ArtifactError, match="MiB"):
        validate_workbook(path, "big.xlsx")
    with pytest.raises(ArtifactError, match="MiB"):
        validate_neuron_package(path)


# ---------------------------------------------------------------- workbook validation


@pytest.mark.parametrize(
    "name",
    ["old.xls", "data.csv", "a/b.xlsx", "a\\b.xlsx", "../x.xlsx", "x..xlsx", "bad\x07.xlsx",
     "noext", ".xlsx", "", "x" * 96 + ".xlsx"],
)
def test_bad_original_names_are_rejected(tmp_path, name):
    path = _write(tmp_path, "upload", make_demo_workbook("svc", "1"))
    with pytest.raises(ArtifactError) as exc:
        validate_workbook(path, name)
    assert exc.value.code == "INVALID_WORKBOOK"
    message = str(exc.value)
    assert "is not an Excel workbook" in message
    assert ".xlsx" in message  # says what to upload instead
    assert "\x07" not in message


def test_name_of_exactly_100_chars_is_accepted(tmp_path):
    path = _write(tmp_path, "upload", make_demo_workbook("svc", "1"))
    validate_workbook(path, "x" * 95 + ".xlsx")


def test_zip_that_is_not_a_workbook_is_rejected(tmp_path):
    path = _write(tmp_path, "f.xlsx", _zip([("[Content_Types].xml", b"<Types/>"), ("word/document.xml", b"<w/>")]))
    with pytest.raises(ArtifactError) as exc:
        validate_workbook(path, "f.xlsx")
    assert exc.value.code == "INVALID_WORKBOOK"
    assert "xl/workbook.xml" in str(exc.value)


def test_broken_workbook_parts_are_wrapped_not_raised_raw(tmp_path):
    members = [(n, b"<not-xml" if n == "xl/workbook.xml" else d) for n, d in _workbook_members()]
    path = _write(tmp_path, "f.xlsx", _zip(members))
    with pytest.raises(ArtifactError) as exc:
        validate_workbook(path, "f.xlsx")
    assert exc.value.code == "INVALID_WORKBOOK"
    assert "could not be read" in str(exc.value)


def test_old_xls_or_encrypted_file_gets_specific_hint(tmp_path):
    path = _write(tmp_path, "f", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600))
    with pytest.raises(ArtifactError, match="password") as exc:
        validate_workbook(path, "f.xlsx")
    assert exc.value.code == "INVALID_WORKBOOK"


def test_zip_bomb_is_rejected_before_openpyxl(tmp_path, monkeypatch):
    members = _workbook_members() + [("xl/media/bomb.bin", bytes(50 * 1024 * 1024))]
    path = _write(tmp_path, "bomb.xlsx", _zip(members))
    assert path.stat().st_size < 1024 * 1024
    _forbid_openpyxl(monkeypatch)
    with pytest.raises(ArtifactError) as exc:
        validate_workbook(path, "bomb.xlsx")
    assert exc.value.code == "INVALID_WORKBOOK"
    assert "xl/media/bomb.bin" in str(exc.value) and "zip bomb" in str(exc.value)
    with pytest.raises(ArtifactError, match="zip bomb") as exc:
        validate_neuron_package(path)
    assert exc.value.code == "INVALID_NEURON_PACKAGE"


def test_too_many_entries_rejected_before_openpyxl(tmp_path, monkeypatch):
    monkeypatch.setattr(artifacts, "MAX_ZIP_ENTRIES", 5)
    _forbid_openpyxl(monkeypatch)
    path = _write(tmp_path, "many.xlsx", make_demo_workbook("svc", "1"))
    with pytest.raises(ArtifactError, match="entries"):
        validate_workbook(path, "many.xlsx")


@pytest.mark.parametrize("evil", ["../evil", "xl/../../evil", "/etc/passwd", "C:/evil", "..\\evil"])
def test_zip_slip_names_are_rejected(tmp_path, monkeypatch, evil):
    _forbid_openpyxl(monkeypatch)
    path = _write(tmp_path, "slip.xlsx", _zip(_workbook_members() + [(evil, b"x")]))
    with pytest.raises(ArtifactError) as exc:
        validate_workbook(path, "slip.xlsx")
    assert exc.value.code == "INVALID_WORKBOOK"
    npath = _write(tmp_path, "slip.zip", _zip([("svc.wasm", make_demo_wasm("s", "1")), (evil, b"x")]))
    with pytest.raises(ArtifactError) as exc:
        validate_neuron_package(npath)
    assert exc.value.code == "INVALID_NEURON_PACKAGE"


def test_xlsm_is_accepted(tmp_path):
    # 1) the demo (xlsx content type) uploaded under an .xlsm name: openpyxl loads it.
    path = _write(tmp_path, "upload", make_demo_workbook("svc", "1"))
    validate_workbook(path, "Model.xlsm")
    # 2) a genuine macro-enabled package (macroEnabled main content type).
    members = [
        (n, d.replace(XLSX_MAIN.encode(), XLSM_MAIN.encode()) if n == "[Content_Types].xml" else d)
        for n, d in _workbook_members()
    ]
    assert XLSM_MAIN.encode() in dict(members)["[Content_Types].xml"]
    path = _write(tmp_path, "upload2", _zip(members))
    validate_workbook(path, "Model.XLSM")
