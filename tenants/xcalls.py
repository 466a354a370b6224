"""The Xcalls of a workbook: which Spark services its formulas call (no Django import).

Two forms (docs: "Call Spark service APIs (Xcall)"):

- `CS.SPARK_XCALL("folder/service[version]", input, ...)` in a cell, also spelt
  `C.SPARK_XCALL`, any case (Excel may store it as `_xludf.CS.SPARK_XCALL`). The first argument
  is the called service's URI. A string literal is recorded as written; anything else (a cell
  reference, a concatenation) is *dynamic*: it is known only when the workbook calculates, so
  it is recorded as the expression, never guessed. The discovery forms call nothing: no
  argument, a folder alone (`"folder"`), or a service's version list (`"folder/service[]"`).
- The legacy Xcall block, read by `C.SPARK_UDFCALLAPI()` on the same sheet: a table with the
  fields CALLTYPE (`SparkService`), FOLDERNAME, SERVICENAME and REQUESTBODY, either as a header
  row with one call per row below it, or as a column of field names with the values to their
  right.

First its XML parts are scanned for the functions' names (streamed, any case): a workbook that
names neither calls nothing, and its cells are never parsed. Otherwise it is read with openpyxl
in read-only mode, row by row: memory stays bounded however large the workbook is. A sheet is
read a second time only when it holds a legacy block. A workbook whose ZIP is unsafe to expand
(a zip bomb, tenants/artifacts.py) is refused before anything is decompressed.
"""
from __future__ import annotations

import warnings
import zipfile
from collections import defaultdict
from dataclasses import dataclass

import openpyxl
from openpyxl.formula import Tokenizer

from tenants.artifacts import zip_problem

XCALL_FUNCTIONS = {"CS.SPARK_XCALL", "C.SPARK_XCALL"}
LEGACY_FUNCTION = "SPARK_UDFCALLAPI"
LEGACY_FIELDS = ("CALLTYPE", "FOLDERNAME", "SERVICENAME")
LEGACY_CALLTYPE = "SPARKSERVICE"
MAX_REFERENCE_CHARS = 300
SCAN_MARKERS = (b"spark_xcall", b"spark_udfcallapi")  # lower case: the scan lowers each chunk
SCAN_OVERLAP = max(map(len, SCAN_MARKERS))  # a marker may straddle two chunks
SCAN_CHUNK = 1 << 20


@dataclass(frozen=True)
class Xcall:
    """One distinct call of a workbook: where it is first found, and how often."""

    reference: str  # the URI as written, or the expression of a dynamic first argument
    dynamic: bool
    cell: str  # "Sheet!B4" of its first occurrence
    occurrences: int = 1


def formula_xcalls(formula: str) -> list[tuple[str, bool]]:
    """(reference, dynamic) of every dependency-making XCALL in one formula."""
    if "SPARK_XCALL" not in formula.upper():
        return []
    tokens = [token for token in Tokenizer(formula).items if token.type != "WHITE-SPACE"]
    found = []
    for index, token in enumerate(tokens):
        if token.type == "FUNC" and token.subtype == "OPEN" and _function_name(token.value) in XCALL_FUNCTIONS:
            argument = _first_argument(tokens, index + 1)
            call = _dependency(argument)
            if call is not None:
                found.append(call)
    return found


def _function_name(value: str) -> str:
    return value.rstrip("(").upper().removeprefix("_XLUDF.")


def _first_argument(tokens, start: int) -> list:
    """The tokens of the call's first argument (up to its first separator or closing bracket)."""
    depth, argument = 0, []
    for token in tokens[start:]:
        if token.subtype == "OPEN":  # a function, a parenthesis or an array constant
            depth += 1
        elif token.subtype == "CLOSE":
            if depth == 0:
                break
            depth -= 1
        elif token.type == "SEP" and token.subtype == "ARG" and depth == 0:
            break
        argument.append(token)
    return argument


def _dependency(argument: list) -> tuple[str, bool] | None:
    if not argument:
        return None  # CS.SPARK_XCALL(): lists folders
    if len(argument) == 1 and argument[0].type == "OPERAND" and argument[0].subtype == "TEXT":
        uri = argument[0].value[1:-1].replace('""', '"').strip()
        if "/" not in uri.strip("/") or uri.endswith("[]"):
            return None  # a folder's services, or a service's versions: discovery
        return uri[:MAX_REFERENCE_CHARS], False
    return "".join(token.value for token in argument)[:MAX_REFERENCE_CHARS], True


class _Collector:
    """Distinct calls in the order first found."""

    def __init__(self):
        self._calls: dict[tuple[str, bool], list] = {}

    def add(self, reference: str, dynamic: bool, cell: str) -> None:
        entry = self._calls.setdefault((reference, dynamic), [cell, 0])
        entry[1] += 1

    def calls(self) -> list[Xcall]:
        return [Xcall(ref, dynamic, cell, count) for (ref, dynamic), (cell, count) in self._calls.items()]


def workbook_xcalls(source) -> list[Xcall]:
    """Every distinct Xcall of the workbook `source` (a path, or a seekable binary file), in the
    order first found.

    Raises ValueError for a workbook whose ZIP is unsafe to expand (artifacts.zip_problem),
    and openpyxl's errors for one it cannot read.
    """
    if hasattr(source, "read"):
        return _workbook_xcalls(source)
    # A file object: openpyxl would refuse a path whose name does not end in .xlsx or .xlsm.
    with open(source, "rb") as handle:
        return _workbook_xcalls(handle)


def _workbook_xcalls(handle) -> list[Xcall]:
    if not _mentions_xcalls(handle):
        return []
    handle.seek(0)
    collector = _Collector()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openpyxl's about extensions it does not read
        workbook = openpyxl.load_workbook(handle, read_only=True)
        try:
            legacy_sheets = {}
            for sheet in workbook.worksheets:
                labels = _scan_sheet(sheet, collector)
                if labels is not None:
                    legacy_sheets[sheet.title] = labels
            for title, labels in legacy_sheets.items():
                _read_legacy_blocks(workbook[title], labels, collector)
        finally:
            workbook.close()
    return collector.calls()


def _mentions_xcalls(handle) -> bool:
    """Whether any XML part of the workbook names an Xcall function, in any case: if none does,
    reading its cells (most of the cost for a large workbook) would find nothing. Every XML part
    is scanned, not only those named like worksheets (a sheet may live under any part name), and
    every part without an extension; media (images, embedded files) are not."""
    with zipfile.ZipFile(handle) as archive:
        if problem := zip_problem(archive):
            raise ValueError(f"the workbook is not safe to read: {problem}")
        for info in archive.infolist():
            if _may_hold_cells(info.filename) and _part_mentions_xcalls(archive, info):
                return True
    return False


def _may_hold_cells(name: str) -> bool:
    base = name.rsplit("/", 1)[-1].lower()
    return base.endswith(".xml") or "." not in base


def _part_mentions_xcalls(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    tail = b""
    with archive.open(info) as part:
        while chunk := part.read(SCAN_CHUNK):
            text = tail + chunk.lower()
            if any(marker in text for marker in SCAN_MARKERS):
                return True
            tail = text[-SCAN_OVERLAP:]
    return False


def _formula_text(value) -> str | None:
    text = getattr(value, "text", value)  # an ArrayFormula keeps its formula in .text
    return text if isinstance(text, str) and text.startswith("=") else None


def _scan_sheet(sheet, collector: _Collector) -> dict | None:
    """Collect the sheet's formula Xcalls; answer where the legacy field labels are, if the
    sheet calls C.SPARK_UDFCALLAPI (else None)."""
    labels, legacy = defaultdict(list), False
    for row in sheet.iter_rows():
        for cell in row:
            value = cell.value
            if value is None:
                continue
            if formula := _formula_text(value):
                legacy = legacy or LEGACY_FUNCTION in formula.upper()
                for reference, dynamic in formula_xcalls(formula):
                    collector.add(reference, dynamic, f"{sheet.title}!{cell.coordinate}")
            elif isinstance(value, str) and value.strip().upper() in LEGACY_FIELDS:
                labels[value.strip().upper()].append((cell.row, cell.column))
    return dict(labels) if legacy and all(field in labels for field in LEGACY_FIELDS) else None


def _read_legacy_blocks(sheet, labels: dict, collector: _Collector) -> None:
    """The calls of each CALLTYPE label's block: a header row or a column of field names."""
    wanted = {}  # (row, column) -> (block, field)
    blocks = []
    for row, column in labels["CALLTYPE"]:
        same_row = {field: [c for r, c in labels[field] if r == row] for field in LEGACY_FIELDS[1:]}
        same_column = {field: [r for r, c in labels[field] if c == column] for field in LEGACY_FIELDS[1:]}
        block = {"rows": {}}
        if all(same_row.values()):  # a header row: one call per row below
            block["columns"] = {"CALLTYPE": column, **{field: cols[0] for field, cols in same_row.items()}}
            block["start"] = row + 1
        elif all(same_column.values()):  # field names in a column, values to their right
            for field, cell_row in (("CALLTYPE", row), *((f, rows[0]) for f, rows in same_column.items())):
                wanted[(cell_row, column + 1)] = (len(blocks), field)
        else:
            continue
        blocks.append(block)
    _fill_blocks(sheet, blocks, wanted)
    for block in blocks:
        rows = block["rows"]
        if "columns" not in block:
            _add_legacy_call(rows.get(0, {}), sheet.title, collector)
            continue
        row = block["start"]
        while "CALLTYPE" in rows.get(row, {}):  # the table ends at its first row without a CALLTYPE
            _add_legacy_call(rows[row], sheet.title, collector)
            row += 1


def _fill_blocks(sheet, blocks: list, wanted: dict) -> None:
    for row in sheet.iter_rows():
        for cell in row:
            if cell.value is None:
                continue
            position = (cell.row, cell.column)
            if position in wanted:
                index, field = wanted[position]
                blocks[index]["rows"].setdefault(0, {})[field] = (cell.value, cell.coordinate)
            for block in blocks:
                columns = block.get("columns")
                if columns and cell.row >= block["start"] and cell.column in columns.values():
                    field = next(f for f, c in columns.items() if c == cell.column)
                    block["rows"].setdefault(cell.row, {})[field] = (cell.value, cell.coordinate)


def _add_legacy_call(call: dict, title: str, collector: _Collector) -> None:
    calltype, cell = call.get("CALLTYPE", (None, ""))
    if not isinstance(calltype, str) or calltype.strip().upper() != LEGACY_CALLTYPE:
        return
    parts = [call.get(field, (None, ""))[0] for field in LEGACY_FIELDS[1:]]
    location = f"{title}!{cell}"
    if all(isinstance(part, str) and part.strip() and not part.startswith("=") for part in parts):
        collector.add(f"{parts[0].strip()}/{parts[1].strip()}"[:MAX_REFERENCE_CHARS], False, location)
    else:
        expression = "/".join(str(getattr(part, "text", part)) for part in parts)
        collector.add(expression[:MAX_REFERENCE_CHARS], True, location)
