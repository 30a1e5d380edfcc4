"""Spreadsheets (Excel ``.xlsx .xlsm .xlsb .xls``, OpenDocument ``.ods``) -> one position per sheet, with
python-calamine.

calamine is a Rust reader (MIT): one small wheel, no Python dependencies, and much faster than openpyxl on large
workbooks; it reads the legacy BIFF ``.xls`` too, so old Excel files are searchable. A sheet's text starts with
its name, then one line per row with the non-empty cells separated by tabs (numbers as written, dates in ISO
form). Password-protected workbooks fail as ``encrypted``; the workbook is parsed from memory, never written.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile

from desktop_search.core.extract.base import Extraction, Page, clean_text, describe, ok
from desktop_search.core.extract.containers import (
    OLE2,
    odf_is_encrypted,
    ole_is_encrypted_package,
    zip_member_names,
    zip_mimetype,
)
from desktop_search.core.extract.registry import Extractor, Source
from desktop_search.core.failures import Reason

__all__ = ["EXTRACTORS", "read_workbook"]

# A sheet with millions of filled cells is data, not prose: keep what a person could read.
MAX_CELLS_PER_SHEET = 2_000_000


def read_workbook(src: Source) -> Extraction:
    if ole_is_encrypted_package(src.data) or _odf_encrypted(src.data):
        return src.fail(Reason.ENCRYPTED, "password-protected workbook; no password known")
    import python_calamine as calamine

    try:
        book = calamine.CalamineWorkbook.from_filelike(io.BytesIO(src.data))
    except calamine.PasswordError:
        return src.fail(Reason.ENCRYPTED, "password-protected workbook; no password known")
    except Exception as exc:  # noqa: BLE001 - CalamineError, ZipError, XmlError, ValueError...
        if "password" in str(exc).lower() or "encrypt" in str(exc).lower():
            return src.fail(Reason.ENCRYPTED, "password-protected workbook; no password known")
        return src.fail(Reason.CORRUPT, f"not a readable workbook ({describe(exc)})")
    pages: list[Page] = []
    warnings: list[str] = []
    names = book.sheet_names
    for number, name in enumerate(names, 1):
        if src.over_time():
            return src.fail(Reason.TIMEOUT, f"stopped after {number - 1} of {len(names)} sheets "
                                       f"(time limit {src.options.time_limit_s:g} s)", page_count=len(names))
        try:
            sheet = book.get_sheet_by_index(number - 1)
            lines, truncated = _sheet_lines(sheet)
        except Exception as exc:  # noqa: BLE001 - one bad sheet must not lose the others
            warnings.append(f"sheet {number} ({name}) could not be read ({describe(exc)})")
            continue
        if truncated:
            warnings.append(f"sheet {number} ({name}) is very large; only its first "
                            f"{MAX_CELLS_PER_SHEET:,} cells are indexed")
        if lines:
            pages.append(Page(number, clean_text("\n".join([name, *lines]))))
    book.close()
    return ok(src.path, src.kind, pages, len(names), what="workbook", warnings=warnings)


def _sheet_lines(sheet) -> tuple[list[str], bool]:
    lines: list[str] = []
    cells = 0
    for row in sheet.iter_rows():
        values = [_cell(v) for v in row]
        values = [v for v in values if v]
        cells += len(row)
        if values:
            lines.append("\t".join(values))
        if cells > MAX_CELLS_PER_SHEET:
            return lines, True
    return lines, False


def _cell(value) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    return str(value).strip()


def _odf_encrypted(data: bytes) -> bool:
    if not zip_mimetype(data):
        return False
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return odf_is_encrypted(zf)


def _is_ooxml_workbook(data: bytes) -> bool:
    return any(n.startswith("xl/workbook") for n in zip_member_names(data))


EXTRACTORS = (
    Extractor(
        name="xlsx", kind="spreadsheet", extensions=(".xlsx", ".xlsm", ".xlsb", ".xls"), read=read_workbook,
        description="Excel workbook", position="sheet", preview="text", signatures=(OLE2,),
        sniff=_is_ooxml_workbook, tokens_per_byte=0.05,
        mime_types=("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "application/vnd.ms-excel"),
    ),
    Extractor(
        name="ods", kind="spreadsheet", extensions=(".ods",), read=read_workbook,
        description="OpenDocument spreadsheet", position="sheet", preview="text",
        sniff=lambda data: zip_mimetype(data) == "application/vnd.oasis.opendocument.spreadsheet",
        tokens_per_byte=0.05, mime_types=("application/vnd.oasis.opendocument.spreadsheet",),
    ),
)
