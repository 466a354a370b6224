"""Xcalls read from workbooks: the formula forms, the legacy block, large workbooks, and their
record in the catalog (service_version_add, catalog_dependencies, the admin)."""
import json
import subprocess
import sys
import zipfile
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from openpyxl.worksheet.formula import ArrayFormula

from tenants import xcalls
from tenants.models import ServiceVersion, VersionXcall
from tenants.services import service_version_add
from tenants.xcalls import Xcall, formula_xcalls, workbook_xcalls
from tests.factories import ServiceVersionFactory
from tests.tenants.workbooks import large_workbook, sheets_workbook

ROOT_CALL = '=CS.SPARK_XCALL("pricing/rating[1.2]", B1:B3)'


@pytest.mark.parametrize(
    "formula,calls",
    [
        (ROOT_CALL, [("pricing/rating[1.2]", False)]),
        ('=C.SPARK_XCALL("pricing/rating", A1)', [("pricing/rating", False)]),
        ('=cs.spark_xcall("pricing/rating")', [("pricing/rating", False)]),  # the input template
        ('=_xludf.CS.SPARK_XCALL("a/b", A1)', [("a/b", False)]),
        ('=CS.SPARK_XCALL( "a/b" , A1)', [("a/b", False)]),
        ('=CS.SPARK_XCALL("folders/f/services/s[2]", A1)', [("folders/f/services/s[2]", False)]),
        ('=CS.SPARK_XCALL(B4, A1)', [("B4", True)]),
        ('=CS.SPARK_XCALL("pricing/"&B4, A1)', [('"pricing/"&B4', True)]),
        ('=CS.SPARK_XCALL(CONCAT("a", "/b"), A1)', [('CONCAT("a","/b")', True)]),
        ('=IF(A1, CS.SPARK_XCALL("a/b", A2), C.SPARK_XCALL("c/d[1]", A3)) + CS.SPARK_XCALL(Z9)',
         [("a/b", False), ("c/d[1]", False), ("Z9", True)]),
        ("=CS.SPARK_XCALL()", []),  # lists the folders
        ('=CS.SPARK_XCALL("pricing")', []),  # lists a folder's services
        ('=CS.SPARK_XCALL("pricing/rating[]")', []),  # lists a service's versions
        ('=SUM(A1:A3)', []),
        ('="CS.SPARK_XCALL(""a/b"")"', []),  # text that merely looks like a call
    ],
)
def test_formula_forms(formula, calls):
    assert formula_xcalls(formula) == calls


def test_calls_in_many_sheets_are_found_once_each_with_where_and_how_often(tmp_path):
    path = sheets_workbook(tmp_path / "book.xlsx", {
        "Inputs": {"A1": 35, "B2": ROOT_CALL},
        "Calc": {"C3": ROOT_CALL, "D4": '=CS.SPARK_XCALL("claims/triage", A1) * 2', "E5": ArrayFormula("E5:E6", "=CS.SPARK_XCALL(A9, A1)")},
    })
    assert workbook_xcalls(path) == [
        Xcall("pricing/rating[1.2]", False, "Inputs!B2", occurrences=2),
        Xcall("claims/triage", False, "Calc!D4"),
        Xcall("A9", True, "Calc!E5"),
    ]


def legacy_cells(orientation: str, *, udf=True, calltype="SparkService", service="rate-table") -> dict:
    cells = {"A1": "=C.SPARK_UDFCALLAPI(D1:G3)"} if udf else {}
    fields = [("CALLTYPE", calltype), ("FOLDERNAME", "pricing"), ("SERVICENAME", service), ("REQUESTBODY", "{}")]
    for index, (field, value) in enumerate(fields):
        if orientation == "row":  # a header row, a call per row below
            column = "DEFG"[index]
            cells[f"{column}1"], cells[f"{column}2"] = field, value
        else:  # the field names down a column, their values to the right
            cells[f"D{index + 1}"], cells[f"E{index + 1}"] = field, value
    return cells


@pytest.mark.parametrize("orientation", ["row", "column"])
def test_legacy_xcall_blocks_are_read_in_either_orientation(tmp_path, orientation):
    path = sheets_workbook(tmp_path / "legacy.xlsx", {"Old": legacy_cells(orientation)})
    assert [(c.reference, c.dynamic) for c in workbook_xcalls(path)] == [("pricing/rate-table", False)]


def test_a_legacy_block_with_a_formula_for_a_name_is_dynamic(tmp_path):
    path = sheets_workbook(tmp_path / "legacy.xlsx", {"Old": legacy_cells("row", service="=B9")})
    assert [(c.reference, c.dynamic) for c in workbook_xcalls(path)] == [("pricing/=B9", True)]


@pytest.mark.parametrize("cells", [legacy_cells("row", udf=False), legacy_cells("row", calltype="Other")])
def test_a_table_that_is_no_spark_service_call_is_not_a_dependency(tmp_path, cells):
    assert workbook_xcalls(sheets_workbook(tmp_path / "legacy.xlsx", {"Old": cells})) == []


def test_a_50_mb_workbook_is_read_in_bounded_memory(tmp_path):
    """Row by row: the peak resident memory grows by far less than the workbook's size."""
    big = large_workbook(tmp_path / "big.xlsx", 50 * 1024 * 1024, 'CS.SPARK_XCALL("first/one", A1)', 'CS.SPARK_XCALL("last/one", A1)')
    small = sheets_workbook(tmp_path / "small.xlsx", {"Data": {"A1": ROOT_CALL}})
    script = (
        "import json, resource, sys; from tenants.xcalls import workbook_xcalls; "
        "calls = workbook_xcalls(sys.argv[1]); "
        "print(json.dumps([[c.reference for c in calls], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss]))"
    )

    def peak(path):
        out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=300, check=True)
        return json.loads(out.stdout)

    (big_calls, big_kib), (_, small_kib) = peak(big), peak(small)
    assert big.stat().st_size > 50 * 1024 * 1024
    assert big_calls == ["first/one", "last/one"]
    assert big_kib - small_kib < 32 * 1024, (big_kib, small_kib)


def test_a_workbook_naming_no_xcall_function_is_not_parsed(tmp_path):
    # Its sheet is not even XML openpyxl could read: only the scan for the names ran.
    path = tmp_path / "plain.xlsx"
    with zipfile.ZipFile(sheets_workbook(tmp_path / "base.xlsx", {"Calc": {"A1": "=SUM(B1:B3)"}})) as base, \
            zipfile.ZipFile(path, "w") as out:
        for info in base.infolist():
            data = b"<not-xml" if info.filename.startswith("xl/worksheets/") else base.read(info)
            out.writestr(info, data)
    assert workbook_xcalls(path) == []


def test_the_scan_finds_a_name_across_chunks_and_in_any_case(tmp_path, monkeypatch):
    monkeypatch.setattr(xcalls, "SCAN_CHUNK", 7)  # every marker straddles chunks
    path = sheets_workbook(tmp_path / "lower.xlsx", {"Calc": {"A1": '=cs.spark_xcall("a/b", B1)'}})
    assert [c.reference for c in workbook_xcalls(path)] == ["a/b"]


def test_a_workbook_that_is_a_zip_bomb_is_refused_before_it_is_expanded(tmp_path):
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bomb:
        bomb.writestr("xl/worksheets/sheet1.xml", b"\0" * (200 * 1024 * 1024))
    with pytest.raises(ValueError, match="zip bomb"):
        workbook_xcalls(path)


# --- in the catalog -------------------------------------------------------------------------


@pytest.mark.django_db
def test_service_version_add_records_the_workbooks_xcalls(tenant, tmp_path):
    path = sheets_workbook(tmp_path / "quote.xlsx", {"Calc": {"A1": ROOT_CALL, "A2": "=CS.SPARK_XCALL(B1, A1)"}})
    version = service_version_add(tenant=tenant, folder="pricing", service="quote", version="1.0.0", workbook_path=path)
    assert [(c.reference, c.dynamic, c.cell) for c in version.xcalls.order_by("dynamic")] == [
        ("pricing/rating[1.2]", False, "Calc!A1"), ("B1", True, "Calc!A2")
    ]
    assert version.xcalls_scanned_at is not None


@pytest.mark.django_db
def test_catalog_dependencies_is_a_dry_run_until_applied(tenant, tmp_path):
    version = ServiceVersionFactory(service__folder__tenant=tenant)
    ServiceVersion.objects.filter(pk=version.pk).update(xcalls_scanned_at=None)  # as before Xcalls were recorded
    dry = StringIO()
    call_command("catalog_dependencies", stdout=dry, stderr=StringIO())
    assert "Would record" in dry.getvalue() and "--apply" in dry.getvalue()
    assert not VersionXcall.objects.exists()
    out = StringIO()
    call_command("catalog_dependencies", "--apply", "--json", stdout=out, stderr=StringIO())
    data = json.loads(out.getvalue())
    assert data["versions"] == 1 and data["applied"] is True
    version.refresh_from_db()
    assert version.xcalls_scanned_at is not None
    call_command("catalog_dependencies", "--apply", "--json", stdout=(again := StringIO()), stderr=StringIO())
    assert json.loads(again.getvalue())["versions"] == 0  # nothing left to read


@pytest.mark.django_db
def test_the_admin_shows_what_a_version_calls_and_who_calls_it(tenant, tmp_path, admin_client):
    def add(service, version, cells):
        path = sheets_workbook(tmp_path / f"{service}-{version}.xlsx", {"Calc": cells})
        return service_version_add(tenant=tenant, folder="pricing", service=service, version=version, workbook_path=path)

    table = add("rate-table", "1.0.0", {"A1": 1})
    rating = add("rating", "1.2.3", {"A1": '=CS.SPARK_XCALL("pricing/rate-table", A2)', "A3": "=CS.SPARK_XCALL(B1, A2)"})
    add("quote", "1.0.0", {"A1": '=CS.SPARK_XCALL("pricing/rating[1.2]", A2)', "A2": '=CS.SPARK_XCALL("pricing/missing", A2)'})
    page = admin_client.get(reverse("admin:tenants_serviceversion_change", args=[rating.pk])).content.decode()
    assert "pricing/rate-table[1.0.0]" in page  # what it calls, resolved
    assert "dynamic" in page
    assert "pricing/quote[1.0.0]" in page and "pricing/rating[1.2]" in page  # who calls it
    table_page = admin_client.get(reverse("admin:tenants_serviceversion_change", args=[table.pk])).content.decode()
    assert "pricing/rating[1.2.3]" in table_page
