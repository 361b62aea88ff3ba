"""The serdes family (io.kestra.plugin.serdes.*): real files through real flows run by `gitsync run`, checked with
the format libraries themselves (amazon-ion, fastavro, pyarrow, openpyxl)."""

from __future__ import annotations

import subprocess
from datetime import date, datetime
from pathlib import Path
from typing import Any

import fastavro
import openpyxl
import pyarrow.parquet as pq
from amazon.ion import simpleion
from runtime import deployed_state, gitsync_cli, python_hiding, run_outputs, stored_file

SERDES = "io.kestra.plugin.serdes"
Done = subprocess.CompletedProcess[str]

# ints, floats, dates, nulls (\N and empty), unicode, quotes and a separator and a line break inside quotes
ORDERS = (
    "id,customer,amount,ordered,note\n"
    '1,Zoë Ångström,12.5,2024-01-31,"said ""hi"", twice"\n'
    "2,李雷,-3.25,2024-02-29,\\N\n"
    '3,"O\'Brien, Pat",,2023-12-01,"two\nlines"\n'
)
ORDER_SCHEMA = """
      {"type": "record", "name": "Order", "fields": [
        {"name": "id", "type": "int"},
        {"name": "customer", "type": "string"},
        {"name": "amount", "type": ["null", "double"]},
        {"name": "ordered", "type": {"type": "int", "logicalType": "date"}},
        {"name": "note", "type": ["null", "string"]}
      ]}
"""


def flow(flow_id: str, tasks: str, outputs: dict[str, str]) -> str:
    shown = "".join(f'  - id: {k}\n    type: STRING\n    value: "{{{{ {v} }}}}"\n' for k, v in outputs.items())
    return (
        f"id: {flow_id}\nnamespace: acme.serdes\ninputs:\n  - id: data\n    type: FILE\ntasks:\n{tasks}\n"
        f"outputs:\n{shown}"
    )


def run(tmp_path: Path, flows: dict[str, str], flow_id: str, data: Path) -> tuple[Any, Done]:
    state = deployed_state(tmp_path, flows)
    return state, gitsync_cli(state, "run", f"acme.serdes.{flow_id}", "--input", f"data=@{data}")


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


ROUND_TRIP = f"""
  - id: ion
    type: {SERDES}.csv.CsvToIon
    from: "{{{{ inputs.data }}}}"
  - id: avro
    type: {SERDES}.avro.IonToAvro
    from: "{{{{ outputs.ion.uri }}}}"
    schema: |{ORDER_SCHEMA}
  - id: from_avro
    type: {SERDES}.avro.AvroToIon
    from: "{{{{ outputs.avro.uri }}}}"
  - id: parquet
    type: {SERDES}.parquet.IonToParquet
    from: "{{{{ outputs.from_avro.uri }}}}"
    compressionCodec: ZSTD
  - id: from_parquet
    type: {SERDES}.parquet.ParquetToIon
    from: "{{{{ outputs.parquet.uri }}}}"
  - id: excel
    type: {SERDES}.excel.IonToExcel
    from: "{{{{ outputs.from_parquet.uri }}}}"
    sheetsTitle: orders
  - id: from_excel
    type: {SERDES}.excel.ExcelToIon
    from: "{{{{ outputs.excel.uri }}}}"
  - id: csv
    type: {SERDES}.csv.IonToCsv
    from: "{{{{ outputs.from_parquet.uri }}}}"
  - id: csv_from_excel
    type: {SERDES}.csv.CsvWriter
    from: "{{{{ outputs.from_excel.uris.orders }}}}"
"""


def test_csv_round_trips_through_ion_avro_parquet_and_excel(tmp_path: Path) -> None:
    outputs = {
        "ion": "outputs.ion.uri",
        "avro": "outputs.avro.uri",
        "parquet": "outputs.parquet.uri",
        "excel": "outputs.excel.uri",
        "csv": "outputs.csv.uri",
        "csv_from_excel": "outputs.csv_from_excel.uri",
        "sizes": "[outputs.ion.size, outputs.avro.size, outputs.parquet.size, outputs.from_excel.size]",
    }
    state, done = run(
        tmp_path, {"trip.yaml": flow("trip", ROUND_TRIP, outputs)}, "trip", write(tmp_path, "orders.csv", ORDERS)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = run_outputs(done)
    assert out["sizes"] == "[3,3,3,3]"

    # CsvToIon: Ion text, one map per line, every value text as Kestra reads CSV, \N a null
    ion_file = stored_file(state, out["ion"])
    assert ion_file.name == "orders.ion"
    assert ion_file.read_text(encoding="utf-8").splitlines()[1] == (
        '{id:"2",customer:"李雷",amount:"-3.25",ordered:"2024-02-29",note:null}'
    )
    with ion_file.open("rb") as handle:
        assert len(list(simpleion.load(handle, single_value=False))) == 3

    # IonToAvro: the schema's types (an empty amount is null: "" is one of nullValues)
    with stored_file(state, out["avro"]).open("rb") as handle:
        records = list(fastavro.reader(handle))
    assert records[0] == {
        "id": 1,
        "customer": "Zoë Ångström",
        "amount": 12.5,
        "ordered": date(2024, 1, 31),
        "note": 'said "hi", twice',
    }
    assert records[2]["amount"] is None and records[2]["note"] == "two\nlines"

    # IonToParquet: the schema inferred from AvroToIon's typed rows
    table = pq.read_table(stored_file(state, out["parquet"]))
    assert [str(t) for t in table.schema.types] == ["int32", "string", "double", "date32[day]", "string"]
    assert table.column("ordered").to_pylist()[1] == date(2024, 2, 29)
    assert pq.ParquetFile(stored_file(state, out["parquet"])).metadata.row_group(0).column(0).compression == "ZSTD"

    # IonToExcel: numbers are numbers, dates are dates
    sheet = openpyxl.load_workbook(stored_file(state, out["excel"])).active
    assert sheet.title == "orders"
    assert [cell.value for cell in sheet[2]] == [1, "Zoë Ångström", 12.5, datetime(2024, 1, 31), 'said "hi", twice']

    # back to CSV: the same text (quotes doubled, a null empty), and through Excel numbers as doubles (Kestra's POI)
    assert stored_file(state, out["csv"]).read_text(encoding="utf-8") == (
        "id,customer,amount,ordered,note\n"
        '1,Zoë Ångström,12.5,2024-01-31,"said ""hi"", twice"\n'
        "2,李雷,-3.25,2024-02-29,\n"
        '3,"O\'Brien, Pat",,2023-12-01,"two\nlines"\n'
    )
    assert stored_file(state, out["csv_from_excel"]).read_text(encoding="utf-8").splitlines()[:2] == [
        "id,customer,amount,ordered,note",
        '1.0,Zoë Ångström,12.5,2024-01-31,"said ""hi"", twice"',
    ]


OPTIONS = f"""
  - id: ion
    type: {SERDES}.csv.CsvReader
    from: "{{{{ inputs.data }}}}"
    fieldSeparator: ";"
    textDelimiter: "'"
    skipRows: 1
    charset: ISO-8859-1
  - id: avro
    type: {SERDES}.avro.IonToAvro
    from: "{{{{ outputs.ion.uri }}}}"
    datetimeFormat: "dd/MM/yyyy HH:mm"
    decimalSeparator: ","
    timeZoneId: Europe/Paris
    trueValues: ["oui"]
    falseValues: ["non"]
    schema: |
      {{"type": "record", "name": "Visit", "fields": [
        {{"name": "city", "type": "string"}},
        {{"name": "at", "type": {{"type": "long", "logicalType": "timestamp-millis"}}}},
        {{"name": "price", "type": {{"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2}}}},
        {{"name": "paid", "type": "boolean"}}
      ]}}
  - id: back
    type: {SERDES}.avro.AvroReader
    from: "{{{{ outputs.avro.uri }}}}"
  - id: csv
    type: {SERDES}.csv.IonToCsv
    from: "{{{{ outputs.back.uri }}}}"
    header: false
    fieldSeparator: "|"
    quoteMode: NON_NUMERIC
    lineDelimiter: "\\r\\n"
    dateTimeFormat: "yyyy/MM/dd HH:mm[XXX]"
    timeZoneId: Asia/Tokyo
  - id: json
    type: {SERDES}.json.IonToJson
    from: "{{{{ outputs.back.uri }}}}"
    newLine: false
"""


def test_kestra_options_for_separators_charsets_formats_and_quoting(tmp_path: Path) -> None:
    # a title line after the header skipped by skipRows; Latin-1 text; ';' fields, "'" quotes, "," decimals
    source = (
        "city;at;price;paid\nskip me;;;\n'Besançon; Doubs';31/01/2024 09:30;12,5;oui\nNîmes;01/07/2024 18:00;3;non\n"
    )
    outputs = {"csv": "outputs.csv.uri", "json": "outputs.json.uri", "size": "outputs.ion.size"}
    state, done = run(
        tmp_path,
        {"opts.yaml": flow("opts", OPTIONS, outputs)},
        "opts",
        write(tmp_path, "visits.csv", source.encode("latin-1")),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = run_outputs(done)
    assert out["size"] == "2"
    # 09:30 in Paris is 08:30 UTC: an instant is shown in UTC whatever timeZoneId says (Kestra formats an Instant
    # with its formatter's zone set to UTC); the decimal keeps its scale; text is quoted, numbers are not
    assert stored_file(state, out["csv"]).read_bytes().decode("utf-8") == (
        '"Besançon; Doubs"|"2024/01/31 08:30Z"|12.50|"true"\r\n"Nîmes"|"2024/07/01 16:00Z"|3.00|"false"\r\n'
    )
    json_file = stored_file(state, out["json"])
    assert json_file.name == "visits.json"
    assert json_file.read_text(encoding="utf-8") == (
        '[{"city":"Besançon; Doubs","at":"2024-01-31T08:30:00Z","price":12.5,"paid":true},'
        '{"city":"Nîmes","at":"2024-07-01T16:00:00Z","price":3.0,"paid":false}]'
    )


def test_a_malformed_csv_fails_with_its_line_and_bad_lines_can_be_skipped(tmp_path: Path) -> None:
    tasks = f"""
  - id: strict
    type: {SERDES}.csv.CsvToIon
    from: "{{{{ inputs.data }}}}"
"""
    lenient = f"""
  - id: lenient
    type: {SERDES}.csv.CsvToIon
    from: "{{{{ inputs.data }}}}"
    onBadLines: WARN
    allowExtraCharsAfterClosingQuote: true
"""
    data = write(tmp_path, "broken.csv", 'id,name\n1,ok\n2,"quoted"tail\n3,too,many\n4,fine\n')
    state = deployed_state(
        tmp_path,
        {
            "strict.yaml": flow("strict", tasks, {"size": "outputs.strict.size"}),
            "lenient.yaml": flow("lenient", lenient, {"uri": "outputs.lenient.uri", "size": "outputs.lenient.size"}),
        },
    )
    done = gitsync_cli(state, "run", "acme.serdes.strict", "--input", f"data=@{data}")
    assert done.returncode == 1
    assert "line 3 of broken.csv is not valid CSV" in done.stdout
    assert "allowExtraCharsAfterClosingQuote" in done.stdout

    done = gitsync_cli(state, "run", "acme.serdes.lenient", "--input", f"data=@{data}")
    assert done.returncode == 0, done.stdout
    out = run_outputs(done)
    assert out["size"] == "3"
    assert "field count mismatch) at line 4 of broken.csv: expected 2 fields as in the header, got 3" in done.stdout
    rows = stored_file(state, out["uri"]).read_text(encoding="utf-8").splitlines()
    assert rows == ['{id:"1",name:"ok"}', '{id:"2",name:"quotedtail"}', '{id:"4",name:"fine"}']


JSON_TASKS = f"""
  - id: ion
    type: {SERDES}.json.JsonReader
    from: "{{{{ inputs.data }}}}"
  - id: csv
    type: {SERDES}.csv.IonToCsv
    from: "{{{{ outputs.ion.uri }}}}"
  - id: jsonl
    type: {SERDES}.json.IonToJson
    from: "{{{{ outputs.ion.uri }}}}"
"""


def test_json_lines_to_ion_and_back(tmp_path: Path) -> None:
    lines = (
        '{"n": 1, "x": 2.5, "ok": true, "tags": ["a"], "s": "é"}\n\n'
        '{"n": 2, "x": null, "ok": false, "tags": [], "s": ""}\n'
    )
    outputs = {"csv": "outputs.csv.uri", "jsonl": "outputs.jsonl.uri", "size": "outputs.ion.size"}
    state, done = run(tmp_path, {"j.yaml": flow("j", JSON_TASKS, outputs)}, "j", write(tmp_path, "in.jsonl", lines))
    assert done.returncode == 0, done.stdout + done.stderr
    out = run_outputs(done)
    assert out["size"] == "2"
    assert stored_file(state, out["csv"]).read_text(encoding="utf-8") == (
        'n,x,ok,tags,s\n1,2.5,true,"[""a""]",é\n2,,false,[],\n'
    )
    assert stored_file(state, out["jsonl"]).read_text(encoding="utf-8").splitlines() == [
        '{"n":1,"x":2.5,"ok":true,"tags":["a"],"s":"é"}',
        '{"n":2,"x":null,"ok":false,"tags":[],"s":""}',
    ]

    bad = write(tmp_path, "bad.jsonl", '{"n": 1}\n{"n": 2,}\n')
    done = gitsync_cli(state, "run", "acme.serdes.j", "--input", f"data=@{bad}")
    assert done.returncode == 1
    assert "line 2 of bad.jsonl is not JSON" in done.stdout


def test_jdbc_store_is_ion_that_serdes_reads(tmp_path: Path) -> None:
    tasks = f"""
  - id: query
    type: io.kestra.plugin.jdbc.sqlite.Query
    sql: select 1 as id, 'a,b' as name, 2.5 as ratio, null as empty union all select 2, 'c', 1e20, null
    fetchType: STORE
  - id: csv
    type: {SERDES}.csv.IonToCsv
    from: "{{{{ outputs.query.uri }}}}"
"""
    outputs = {"csv": "outputs.csv.uri", "ion": "outputs.query.uri"}
    state, done = run(tmp_path, {"q.yaml": flow("q", tasks, outputs)}, "q", write(tmp_path, "unused.txt", "x"))
    assert done.returncode == 0, done.stdout + done.stderr
    out = run_outputs(done)
    assert stored_file(state, out["ion"]).read_text().splitlines()[0] == '{id:1,name:"a,b",ratio:2.5e+0,empty:null}'
    assert stored_file(state, out["csv"]).read_text() == 'id,name,ratio,empty\n1,"a,b",2.5,\n2,c,1.0E20,\n'


EXCEL_TASKS = f"""
  - id: ion
    type: {SERDES}.csv.CsvToIon
    from: "{{{{ inputs.data }}}}"
  - id: first
    type: {SERDES}.json.IonToJson
    from: "{{{{ outputs.ion.uri }}}}"
  - id: book
    type: {SERDES}.excel.IonToExcel
    from:
      north: "{{{{ outputs.ion.uri }}}}"
      south: "{{{{ outputs.ion.uri }}}}"
    header: false
  - id: sheets
    type: {SERDES}.excel.ExcelToIon
    from: "{{{{ outputs.book.uri }}}}"
    sheetsTitle: [south]
    skipRows: 1
"""


def test_excel_sheets_from_a_map_and_back_with_skip_rows(tmp_path: Path) -> None:
    data = write(tmp_path, "people.csv", "title row,\nname,age\nann,41\nbob,7\n")
    tasks = EXCEL_TASKS.replace(
        'from: "{{ inputs.data }}"\n  - id: first', 'from: "{{ inputs.data }}"\n    header: false\n  - id: first'
    )
    outputs = {"book": "outputs.book.uri", "south": "outputs.sheets.uris.south", "size": "outputs.sheets.size"}
    state, done = run(tmp_path, {"x.yaml": flow("x", tasks, outputs)}, "x", data)
    assert done.returncode == 0, done.stdout + done.stderr
    out = run_outputs(done)
    book = openpyxl.load_workbook(stored_file(state, out["book"]))
    assert book.sheetnames == ["north", "south"]
    assert [[c.value for c in row] for row in book["north"].iter_rows()][1] == ["name", "age"]
    assert out["size"] == "2"
    rows = [dict(r) for r in simpleion.load(stored_file(state, out["south"]).open("rb"), single_value=False)]
    assert rows == [{"name": "ann", "age": "41"}, {"name": "bob", "age": "7"}]


def test_a_run_without_the_serdes_extra_names_the_pip_install(tmp_path: Path) -> None:
    tasks = f"""
  - id: ion
    type: {SERDES}.csv.CsvToIon
    from: "{{{{ inputs.data }}}}"
  - id: avro
    type: {SERDES}.avro.IonToAvro
    from: "{{{{ outputs.ion.uri }}}}"
"""
    source = tmp_path / "flow.yaml"
    source.write_text(flow("noextra", tasks, {"uri": "outputs.avro.uri"}), encoding="utf-8")
    data = write(tmp_path, "d.csv", "a\n1\n")
    python = python_hiding(tmp_path, ["fastavro", "pyarrow", "openpyxl"])
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    checked = subprocess.run(
        [str(python), "-m", "gitsync", "validate", str(source)], capture_output=True, text=True, env=env, timeout=120
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    done = subprocess.run(
        [str(python), "-m", "gitsync", "run", "--file", str(source), "--input", f"data=@{data}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 1
    assert "ok ion" in done.stdout
    assert "avro.IonToAvro needs the Python package fastavro, which is not installed" in done.stdout
    assert "pip install 'gitsync[serdes]'" in done.stdout


def test_ion_timestamps_read_back_as_kestra_reads_them(tmp_path: Path) -> None:
    """Kestra's IonParser: a timestamp at midnight UTC is a date, others are instants; annotated strings are the
    java.time values they name."""
    ion = (
        "{d:2024-01-31T00:00:00Z,t:2024-01-31T10:00:00.5Z,o:2024-01-31T10:00:00+02:00,"
        'l:LocalDateTime::"2024-01-31T10:00:00",lt:LocalTime::"09:15:00",s:sym}\n'
    )
    tasks = f"""
  - id: csv
    type: {SERDES}.csv.IonToCsv
    from: "{{{{ inputs.data }}}}"
    timeZoneId: UTC
    dateTimeFormat: "yyyy-MM-dd HH:mm:ss.SSS[XXX]"
"""
    flows = {"i.yaml": flow("i", tasks, {"csv": "outputs.csv.uri"})}
    state, done = run(tmp_path, flows, "i", write(tmp_path, "r.ion", ion))
    assert done.returncode == 0, done.stdout + done.stderr
    assert stored_file(state, run_outputs(done)["csv"]).read_text().splitlines()[1] == (
        "2024-01-31,2024-01-31 10:00:00.500Z,2024-01-31 08:00:00.000Z,2024-01-31 10:00:00.000Z,09:15:00,sym"
    )
