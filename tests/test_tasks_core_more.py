"""Core types added for issue 15 (LoopUntil/WaitFor, Assert, the storage file tasks, FilterItems,
DeduplicateItems) and plugin-compress, each through a real flow run by `gitsync run`."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path

from runtime import deployed_state, gitsync_cli, run_outputs, stored_file

LOOP = """
id: loop
namespace: acme.more
tasks:
  - id: loop
    type: io.kestra.plugin.core.flow.WaitFor
    condition: "{{ outputs.count.value == '3' }}"
    checkFrequency:
      interval: PT0.01S
    tasks:
      - id: count
        type: io.kestra.plugin.core.debug.Return
        format: "{{ outputs.loop.iterationCount }}"
outputs:
  - id: iterations
    type: INT
    value: "{{ outputs.loop.iterationCount }}"
  - id: last
    type: STRING
    value: "{{ outputs.count.value }}"
"""

LOOP_MAX = """
id: loop_max
namespace: acme.more
tasks:
  - id: poll
    type: io.kestra.plugin.core.flow.LoopUntil
    condition: "{{ false }}"
    failOnMaxReached: true
    checkFrequency:
      interval: PT0S
      maxIterations: 2
    tasks:
      - id: tick
        type: io.kestra.plugin.core.log.Log
        message: "tick {{ taskrun.iteration }}"
"""


def test_loop_until_runs_its_tasks_until_the_condition_holds(tmp_path: Path) -> None:
    state = deployed_state(tmp_path, {"loop.yaml": LOOP, "loop_max.yaml": LOOP_MAX})
    done = gitsync_cli(state, "run", "acme.more.loop")
    assert done.returncode == 0, done.stdout + done.stderr
    assert run_outputs(done) == {"iterations": 3, "last": "3"}
    assert done.stdout.count("ok count") == 3

    done = gitsync_cli(state, "run", "acme.more.loop_max")
    assert done.returncode == 1
    assert done.stdout.count("ok tick") == 2
    assert "the condition did not hold after 2 iteration(s): maxIterations was reached" in done.stdout


ASSERT = """
id: checks
namespace: acme.more
inputs:
  - id: param
    type: STRING
tasks:
  - id: check
    type: io.kestra.plugin.core.execution.Assert
    errorMessage: "param was {{ inputs.param }}"
    conditions:
      - "{{ inputs.param == 'ok' }}"
      - "{{ 1 + 1 == 2 }}"
      - "{{ outputs.missing.value }}"
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: all good
"""


def test_assert_fails_with_each_condition_that_does_not_hold(tmp_path: Path) -> None:
    state = deployed_state(tmp_path, {"checks.yaml": ASSERT.replace('      - "{{ outputs.missing.value }}"\n', "")})
    done = gitsync_cli(state, "run", "acme.more.checks", "--input", "param=ok")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok after" in done.stdout

    state = deployed_state(tmp_path / "failing", {"checks.yaml": ASSERT})
    done = gitsync_cli(state, "run", "acme.more.checks", "--input", "param=nope")
    assert done.returncode == 1
    assert "2 assertions failed!\nparam was nope\nAssertion `{{ inputs.param == 'ok' }}` failed!" in done.stdout
    assert "Assertion `{{ outputs.missing.value }}` failed, failed to render" in done.stdout
    assert "ok after" not in done.stdout


FILES = """
id: files
namespace: acme.more
tasks:
  - id: write
    type: io.kestra.plugin.core.storage.Write
    extension: csv
    content: |
      a
      b
      c
      d
      e
  - id: split
    type: io.kestra.core.tasks.storages.Split
    from: "{{ outputs.write.uri }}"
    rows: 2
  - id: parts
    type: io.kestra.plugin.core.storage.Split
    from: "{{ outputs.write.uri }}"
    partitions: 2
  - id: concat
    type: io.kestra.plugin.core.storage.Concat
    files: "{{ outputs.split.uris }}"
    separator: "--\\n"
    extension: .txt
  - id: size
    type: io.kestra.plugin.core.storage.Size
    uri: "{{ outputs.concat.uri }}"
  - id: reverse
    type: io.kestra.plugin.core.storage.Reverse
    from: "{{ outputs.write.uri }}"
    separator: ";"
  - id: delete
    type: io.kestra.plugin.core.storage.Delete
    uri: "{{ outputs.split.uris[0] }}"
  - id: delete_again
    type: io.kestra.plugin.core.storage.Delete
    uri: "{{ outputs.split.uris[0] }}"
outputs:
  - id: splits
    type: JSON
    value: "{{ outputs.split.uris }}"
  - id: parts
    type: JSON
    value: "{{ outputs.parts.uris }}"
  - id: concat
    type: STRING
    value: "{{ read(outputs.concat.uri) }}"
  - id: size
    type: INT
    value: "{{ outputs.size.size }}"
  - id: reversed
    type: STRING
    value: "{{ read(outputs.reverse.uri) }}"
  - id: deleted
    type: JSON
    value: "{{ [outputs.delete.deleted, outputs.delete_again.deleted] }}"
"""


def test_storage_write_split_concat_size_reverse_delete(tmp_path: Path) -> None:
    state = deployed_state(tmp_path, {"files.yaml": FILES})
    done = gitsync_cli(state, "run", "acme.more.files")
    assert done.returncode == 0, done.stdout + done.stderr
    out = run_outputs(done)
    assert [Path(uri).name for uri in out["splits"]] == ["write-0.csv", "write-1.csv", "write-2.csv"]
    assert not stored_file(state, out["splits"][0]).exists()  # deleted
    assert stored_file(state, out["splits"][2]).read_text() == "e\n"
    assert [stored_file(state, uri).read_text() for uri in out["parts"]] == ["a\nc\ne\n", "b\nd\n"]
    assert out["concat"] == "a\nb\n--\nc\nd\n--\ne\n--\n"
    assert out["size"] == len(out["concat"])
    assert out["reversed"] == "e;d;c;b;a;"
    assert out["deleted"] == [True, False]


ITEMS = """
id: items
namespace: acme.more
tasks:
  - id: rows
    type: io.kestra.plugin.core.storage.Write
    extension: .ion
    content: |
      {id:1,name:"a",score:10}
      {id:2,name:"b",score:null}
      {id:1,name:"c",score:30}
      {id:3,name:"d",score:5}
  - id: high
    type: io.kestra.plugin.core.storage.FilterItems
    from: "{{ outputs.rows.uri }}"
    filterCondition: "{{ score != null and score > 6 }}"
  - id: not_null
    type: io.kestra.plugin.core.storage.FilterItems
    from: "{{ outputs.rows.uri }}"
    filterCondition: "{{ score == null }}"
    filterType: EXCLUDE
  - id: unique
    type: io.kestra.plugin.core.storage.DeduplicateItems
    from: "{{ outputs.rows.uri }}"
    expr: "{{ id }}"
outputs:
  - id: high
    type: STRING
    value: "{{ read(outputs.high.uri) }}"
  - id: counts
    type: JSON
    value: >-
      {{ [outputs.high.processedItemsTotal, outputs.high.droppedItemsTotal,
      outputs.not_null.droppedItemsTotal] }}
  - id: unique
    type: STRING
    value: "{{ read(outputs.unique.uri) }}"
  - id: keys
    type: INT
    value: "{{ outputs.unique.numKeys }}"
"""


def test_filter_and_deduplicate_items_evaluate_their_expression_per_row(tmp_path: Path) -> None:
    state = deployed_state(tmp_path, {"items.yaml": ITEMS})
    done = gitsync_cli(state, "run", "acme.more.items")
    assert done.returncode == 0, done.stdout + done.stderr
    out = run_outputs(done)
    assert out["high"] == '{id:1,name:"a",score:10}\n{id:1,name:"c",score:30}\n'
    assert out["counts"] == [4, 2, 1]
    assert out["unique"] == '{id:2,name:"b",score:null}\n{id:1,name:"c",score:30}\n{id:3,name:"d",score:5}\n'
    assert out["keys"] == 3

    failing = ITEMS.replace('filterCondition: "{{ score == null }}"', 'filterCondition: "{{ nothing.here }}"')
    state = deployed_state(tmp_path / "failing", {"items.yaml": failing})
    done = gitsync_cli(state, "run", "acme.more.items")
    assert done.returncode == 1
    assert "filterCondition `{{ nothing.here }}`" in done.stdout and "errorOrNullBehavior" in done.stdout


COMPRESS = """
id: packs
namespace: acme.more
inputs:
  - id: archive
    type: FILE
tasks:
  - id: one
    type: io.kestra.plugin.core.storage.Write
    content: first file
  - id: two
    type: io.kestra.plugin.core.storage.Write
    content: second file
  - id: zip
    type: io.kestra.plugin.compress.ArchiveCompress
    algorithm: ZIP
    from:
      docs/one.txt: "{{ outputs.one.uri }}"
      two.txt: "{{ outputs.two.uri }}"
  - id: targz
    type: io.kestra.plugin.compress.ArchiveCompress
    algorithm: TAR
    compression: GZIP
    from:
      one.txt: "{{ outputs.one.uri }}"
  - id: unzip
    type: io.kestra.plugin.compress.ArchiveDecompress
    algorithm: ZIP
    from: "{{ outputs.zip.uri }}"
  - id: untar
    type: io.kestra.plugin.compress.ArchiveDecompress
    algorithm: TAR
    compression: GZIP
    from: "{{ outputs.targz.uri }}"
  - id: gz
    type: io.kestra.plugin.compress.FileCompress
    compression: GZIP
    from: "{{ outputs.two.uri }}"
  - id: gunzip
    type: io.kestra.plugin.compress.FileDecompress
    compression: GZIP
    from: "{{ outputs.gz.uri }}"
  - id: theirs
    type: io.kestra.plugin.compress.ArchiveDecompress
    algorithm: ZIP
    from: "{{ inputs.archive }}"
outputs:
  - id: zip
    type: STRING
    value: "{{ outputs.zip.uri }}"
  - id: unzipped
    type: JSON
    value: "{{ outputs.unzip.files }}"
  - id: untarred
    type: STRING
    value: "{{ read(outputs.untar.files['one.txt']) }}"
  - id: gz
    type: STRING
    value: "{{ outputs.gz.uri }}"
  - id: gunzipped
    type: STRING
    value: "{{ read(outputs.gunzip.uri) }}"
"""


def test_archives_and_compressed_files_round_trip(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs.zip"
    with zipfile.ZipFile(theirs, "w") as out:
        out.writestr("report 2024.csv", "x,y\n")
    state = deployed_state(tmp_path, {"packs.yaml": COMPRESS})
    done = gitsync_cli(state, "run", "acme.more.packs", "--input", f"archive=@{theirs}")
    assert done.returncode == 0, done.stdout + done.stderr
    out = run_outputs(done)
    with zipfile.ZipFile(stored_file(state, out["zip"])) as zipped:
        assert sorted(zipped.namelist()) == ["docs/one.txt", "two.txt"]
        assert zipped.read("docs/one.txt") == b"first file"
    assert sorted(out["unzipped"]) == ["docs/one.txt", "two.txt"]
    assert stored_file(state, out["unzipped"]["two.txt"]).read_text() == "second file"
    assert out["untarred"] == "first file"
    assert gzip.decompress(stored_file(state, out["gz"]).read_bytes()) == b"second file"
    assert out["gunzipped"] == "second file"


def test_an_archive_entry_that_leaves_the_working_directory_is_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as out:
        data = b"owned"
        info = tarfile.TarInfo("../../outside.txt")
        info.size = len(data)
        out.addfile(info, io.BytesIO(data))
    flow = COMPRESS.split("  - id: one\n")[0] + (
        "  - id: untar\n    type: io.kestra.plugin.compress.ArchiveDecompress\n    algorithm: TAR\n"
        '    from: "{{ inputs.archive }}"\n'
    )
    state = deployed_state(tmp_path, {"packs.yaml": flow})
    done = gitsync_cli(state, "run", "acme.more.packs", "--input", f"archive=@{evil}")
    assert done.returncode == 1
    assert "the archive entry '../../outside.txt' would be written outside the working directory" in done.stdout
    assert not list(tmp_path.rglob("outside.txt"))


EACH_PARENT = """
id: each
namespace: acme.more
inputs:
  - id: file
    type: FILE
tasks:
  - id: each
    type: io.kestra.core.tasks.flows.ForEachItem
    items: "{{ inputs.file }}"
    batch:
      rows: "{{ 2 }}"
    namespace: acme.more
    flowId: batch
    inputs:
      items: "{{ taskrun.items }}"
      number: "{{ taskrun.iteration }}"
  - id: merged
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(outputs.each_merge.subflowOutputs) }}"
outputs:
  - id: merged
    type: STRING
    value: "{{ outputs.merged.value }}"
  - id: batches
    type: INT
    value: "{{ outputs.each_items.numberOfBatches }}"
  - id: iterations
    type: JSON
    value: "{{ outputs.each_items.iterations }}"
  - id: splits
    type: STRING
    value: "{{ read(outputs.each_split.splits) }}"
"""
EACH_CHILD = """
id: batch
namespace: acme.more
inputs:
  - id: items
    type: FILE
  - id: number
    type: INT
tasks:
  - id: fail_on_three
    type: io.kestra.plugin.core.execution.Fail
    condition: "{{ read(inputs.items) contains 'boom' }}"
outputs:
  - id: lines
    type: STRING
    value: "{{ inputs.number }}:{{ read(inputs.items) | trim | replace({'\\n': '+'}) }}"
"""


def test_for_each_item_runs_a_subflow_per_batch_of_lines(tmp_path: Path) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text("a\nb\nc\nd\ne\n", encoding="utf-8")
    state = deployed_state(tmp_path, {"each.yaml": EACH_PARENT, "batch.yaml": EACH_CHILD})
    done = gitsync_cli(state, "run", "acme.more.each", "--input", f"file=@{items}")
    assert done.returncode == 0, done.stdout + done.stderr
    out = run_outputs(done)
    assert out["batches"] == 3
    assert out["iterations"] == {"SUCCESS": 3}
    assert out["merged"] == '{lines:"1:a+b"}\n{lines:"2:c+d"}\n{lines:"3:e"}\n'
    assert [Path(uri).name for uri in out["splits"].splitlines()] == ["items-0.jsonl", "items-1.jsonl", "items-2.jsonl"]

    items.write_text("a\nb\nboom\nd\n", encoding="utf-8")
    done = gitsync_cli(state, "run", "acme.more.each", "--input", f"file=@{items}")
    assert done.returncode == 1
    assert "1 of 2 subflow execution(s) did not succeed" in done.stdout
