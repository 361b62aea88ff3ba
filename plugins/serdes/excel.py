"""Excel (xlsx) to and from Ion (openpyxl, in the `serdes` extra): `ExcelToIon` and `IonToExcel`.

ExcelToIon writes one Ion file per sheet (`uris`: sheet title -> URI); a number is read as a double, as Kestra's
Apache POI reads every numeric cell, and a date as its ISO text (`dateTimeRender: UNFORMATTED_VALUE`), its Excel
serial number (SERIAL_NUMBER) or the text Excel shows (FORMATTED_STRING). IonToExcel writes one sheet per file
(`from` a URI, or a map of sheet title -> URI); a text starting with `Formula:` becomes a formula.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, ClassVar, Literal

from pydantic import Field

from plugins.core._props import as_bool, as_map, as_str_list
from plugins.ion import read_file, write_file
from plugins.serdes.common import SerdesTask, TextWriter, library, zone_of
from runner.api import RunContext, TaskFailed
from runner.types import Dyn

EXCEL_EPOCH = datetime(1899, 12, 30)
FORMULA = "Formula:"


class ExcelToIon(SerdesTask):
    """Convert the sheets of an Excel file to Ion files, one per sheet."""

    type_name: ClassVar[str] = "io.kestra.plugin.serdes.excel.ExcelToIon"

    sheetsTitle: Dyn[list[str]] | None = None
    """The titles of the sheets to convert (all when empty)."""
    charset: Dyn[str] = "UTF-8"
    """Accepted as Kestra does (an xlsx file names its own encoding)."""
    valueRender: Dyn[Literal["FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA"]] = "UNFORMATTED_VALUE"
    """UNFORMATTED_VALUE: the cell's value; FORMATTED_VALUE: the text Excel shows; FORMULA: a formula's cached
    result."""
    dateTimeRender: Dyn[Literal["SERIAL_NUMBER", "FORMATTED_STRING", "UNFORMATTED_VALUE"]] = "UNFORMATTED_VALUE"
    """A date cell as its ISO date (UNFORMATTED_VALUE), its Excel serial number, or the text Excel shows."""
    header: Dyn[bool] = True
    """The first row (after skipRows) names the columns; false: each row is a list."""
    skipEmptyRows: Dyn[bool] = False
    """Accepted as Kestra does (an empty cell is null)."""
    skipRows: int = Field(default=0, ge=0)
    """Rows to skip at the top of each sheet (a title, notes) before the header."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        openpyxl = library("openpyxl", self)
        source = self.source(ctx)
        try:
            book = openpyxl.load_workbook(str(source), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises InvalidFileException, KeyError, zipfile.BadZipFile, ...
            raise TaskFailed(f"{source.name} is not an Excel (xlsx) file ({exc or type(exc).__name__})") from None
        wanted = as_str_list(self.sheetsTitle, "sheetsTitle")
        missing = [title for title in wanted if title not in book.sheetnames]
        if missing:
            raise TaskFailed(f"sheetsTitle names sheets {missing} that {source.name} does not hold: {book.sheetnames}")
        uris: dict[str, str] = {}
        total = 0
        try:
            for sheet in book.worksheets:
                if wanted and sheet.title not in wanted:
                    continue
                rows = list(self._sheet_rows(sheet))
                local = self.scratch(ctx)
                total += write_file(local, rows)
                stored = self.store(ctx, local, 0, f"{sheet.title}.ion")
                uris[sheet.title] = stored["uri"]
        finally:
            book.close()
        return {"uris": uris, "size": total}

    def _sheet_rows(self, sheet: Any) -> Iterator[Any]:
        header = as_bool(self.header, "header")
        skip = self.skipRows
        rows = sheet.iter_rows()
        names: list[str] | None = None
        for index, cells in enumerate(rows):
            if header and names is None:
                if index < skip:
                    continue
                names = [
                    str(self._cell(cell)) if cell.value is not None else f"Column{i}" for i, cell in enumerate(cells)
                ]
                continue
            if not header and index < skip:
                continue
            values = [None if cell.value is None else self._cell(cell) for cell in cells]
            if names is None:
                yield values
            else:
                yield {name: values[i] if i < len(values) else None for i, name in enumerate(names)}

    def _cell(self, cell: Any) -> Any:
        value = cell.value
        render = str(self.valueRender).upper()
        dates = str(self.dateTimeRender).upper()
        if isinstance(value, datetime | date | time):
            if dates == "SERIAL_NUMBER":
                return _serial(value)
            if dates == "FORMATTED_STRING" or render == "FORMATTED_VALUE":
                return _shown_date(value, cell.number_format)
            return (value.date() if isinstance(value, datetime) else value).isoformat()
        if render == "FORMATTED_VALUE":
            return _shown(value, cell.number_format)
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float | Decimal):
            return float(value)
        if isinstance(value, str) and value.startswith("#") and cell.data_type == "e":
            return None
        return value


def _serial(value: datetime | date | time) -> float:
    if isinstance(value, time):
        return (value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6) / 86400
    moment = value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)
    return (moment - EXCEL_EPOCH).total_seconds() / 86400


def _shown(value: Any, number_format: str) -> str:
    """The text Excel shows for a cell (the General format and fixed decimals; other formats as General)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float | Decimal):
        fmt = (number_format or "General").split(";")[0]
        if fmt.replace(",", "").startswith("0.") and set(fmt) <= set("0.,#"):
            decimals = len(fmt.split(".", 1)[1])
            return f"{float(value):,.{decimals}f}" if "," in fmt else f"{float(value):.{decimals}f}"
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return "" if value is None else str(value)


def _shown_date(value: datetime | date | time, number_format: str) -> str:
    fmt = (number_format or "").lower()
    if isinstance(value, time):
        return value.strftime("%H:%M:%S" if "ss" in fmt else "%H:%M")
    moment = value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)
    if fmt.startswith(("yyyy-mm-dd", "yyyy/mm/dd")):
        shown = moment.strftime("%Y-%m-%d" if "-" in fmt[:10] else "%Y/%m/%d")
    else:
        shown = f"{moment.month}/{moment.day}/{moment.strftime('%y')}"
    if "h" in fmt:
        shown += moment.strftime(" %H:%M:%S" if "ss" in fmt else " %H:%M")
    return shown


class IonToExcel(TextWriter):
    """Convert Ion files to an Excel (xlsx) file: one sheet per file."""

    type_name: ClassVar[str] = "io.kestra.plugin.serdes.excel.IonToExcel"
    output_suffix: ClassVar[str] = ".xlsx"

    from_: str | dict[str, str] = Field(alias="from")  # type: ignore[assignment]
    """The Ion file (a kestra:/// URI), or a map of sheet title -> Ion file."""
    charset: Dyn[str] = "UTF-8"
    """Accepted as Kestra does (an xlsx file names its own encoding)."""
    sheetsTitle: Dyn[str] = "Sheet"
    """The sheet's title when `from` is one file."""
    header: Dyn[bool] = True
    """Write the first row's keys as the first row."""
    styles: Dyn[bool] = True
    """Format date columns with dateFormat (Excel holds at most 64,000 styles)."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        openpyxl = library("openpyxl", self)
        sheets = self._sheets()
        book = openpyxl.Workbook(write_only=True)
        total = 0
        for title, uri in sheets.items():
            source = self.source_of(ctx, uri)
            try:
                sheet = book.create_sheet(title=title[:31])
            except ValueError as exc:
                raise TaskFailed(f"{title!r} cannot be a sheet title: {exc}") from None
            total += self._write_sheet(sheet, source)
        local = self.scratch(ctx)
        book.save(str(local))
        first = next(iter(sheets.values()))
        return self.store(ctx, local, total, self.result_name(first))

    def _sheets(self) -> dict[str, str]:
        value: Any = self.from_
        if isinstance(value, str) and value.strip().startswith("{"):
            value = as_map(value, "from")
        if isinstance(value, dict):
            if not value:
                raise TaskFailed("from is an empty map: give at least one sheet title -> Ion file")
            return {str(title): str(uri) for title, uri in value.items()}
        return {str(self.sheetsTitle or "Sheet"): str(value)}

    def source_of(self, ctx: RunContext, uri: str) -> Any:
        return self.model_copy(update={"from_": uri}).source(ctx)

    def _write_sheet(self, sheet: Any, source: Any) -> int:
        header = as_bool(self.header, "header")
        styles = as_bool(self.styles, "styles")
        zone = zone_of(self.timeZoneId)
        convert = self.text_converter()
        count = 0
        columns: list[str] | None = None
        for row in read_file(source, source.name):
            if isinstance(row, list):
                if header:
                    raise TaskFailed(
                        f"row {count + 1} of {source.name} is a list, not a map: a header needs named columns; set "
                        "header: false to write lists"
                    )
                values = row
            elif isinstance(row, dict):
                if columns is None:
                    columns = list(row)
                    if header:
                        sheet.append(columns)
                values = [row.get(name) for name in columns]
            else:
                values = [row]
            sheet.append([self._cell(sheet, value, styles, zone, convert) for value in values])
            count += 1
        return count

    def _cell(self, sheet: Any, value: Any, styles: bool, zone: Any, convert: Any) -> Any:
        from openpyxl.cell import WriteOnlyCell  # the extra is there: run() imported openpyxl

        if isinstance(value, bool | int | float):
            return value
        if isinstance(value, Decimal):
            return float(value)
        if isinstance(value, datetime | date):
            if isinstance(value, datetime) and value.tzinfo is not None:
                value = value.astimezone(zone).replace(tzinfo=None)
            if not styles:
                return value
            cell = WriteOnlyCell(sheet, value=value)
            cell.number_format = self.dateFormat  # Kestra styles dates and date-times alike, with dateFormat
            return cell
        if isinstance(value, time):
            return value.replace(tzinfo=None)
        text = convert(value)
        if text is not None and text.startswith(FORMULA):
            return "=" + text[len(FORMULA) :].lstrip("=")
        return text
