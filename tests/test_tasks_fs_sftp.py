"""The SFTP tasks and Trigger (io.kestra.plugin.fs.sftp.*) against Debian's OpenSSH server on 127.0.0.1
(tests/sshd_server.py): flows run by `gitsync run`, and what they did checked in the test user's real home folder."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from runtime import deployed_state, gitsync_cli, run_outputs, stored_file
from sshd_server import SshServer
from taskctx import make_context
from test_tasks_fs_ssh import secrets_env

from gitsync.state.kv import SqliteKeyValue
from plugins.fs.sftp.trigger import Trigger
from runner.api import TaskFailed

Done = subprocess.CompletedProcess[str]


def login(sshd: SshServer, how: str = "password") -> str:
    lines = f'    host: {sshd.host}\n    port: "{sshd.port}"\n    username: {sshd.user}\n'
    if how == "password":
        return lines + "    password: \"{{ secret('SFTP_PASSWORD') }}\"\n"
    return lines + "    keyfile: \"{{ secret('SFTP_KEY') }}\"\n    passphrase: \"{{ secret('SFTP_PASS') }}\"\n"


def task(sshd: SshServer, task_id: str, kind: str, body: str, how: str = "password") -> str:
    return f"  - id: {task_id}\n    type: io.kestra.plugin.fs.sftp.{kind}\n{login(sshd, how)}{body}"


def run_flow(
    tmp_path: Path, sshd: SshServer, tasks: str, outputs: dict[str, str], data: Path | None = None
) -> tuple[tuple[str, str], Done]:
    shown = "".join(f'  - id: {k}\n    type: STRING\n    value: "{{{{ {v} }}}}"\n' for k, v in outputs.items())
    inputs = "inputs:\n  - id: data\n    type: FILE\n" if data else ""
    text = f"id: transfer\nnamespace: acme.sftp\n{inputs}tasks:\n{tasks}\noutputs:\n{shown}"
    state = deployed_state(tmp_path, {"transfer.yaml": text})
    env = secrets_env(SFTP_PASSWORD=sshd.password, SFTP_KEY=sshd.locked_key, SFTP_PASS=sshd.passphrase)
    args = ["run", "acme.sftp.transfer"] + (["--input", f"data=@{data}"] if data else [])
    return state, gitsync_cli(state, *args, env=env)


def test_upload_list_download_move_downloads_and_delete_in_one_flow(sshd: SshServer, tmp_path: Path) -> None:
    home = sshd.folder("t-flow")
    data = tmp_path / "orders.csv"
    data.write_text("id,amount\n1,12.5\n2,-3\n")
    (home / "old").mkdir()
    (home / "old" / "a.log").write_text("first")
    (home / "old" / "b.txt").write_text("second")
    (home / "old" / "deep").mkdir()
    (home / "old" / "deep" / "c.log").write_text("third")
    sshd.own(home / "old", *(home / "old").rglob("*"))
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    tasks = "\n".join([
        task(sshd, "upload", "Upload", '    from: "{{ inputs.data }}"\n    to: /t-flow/in/orders.csv'),
        task(sshd, "listing", "List", "    from: /t-flow/old\n    regExp: '.*\\.log'\n    recursive: true\n"
             "    sort: NAME_DESC"),
        task(sshd, "download", "Download", f"    from: /t-flow/in/orders.csv\n    validateChecksum: true\n"
             f"    checksumExpected: {digest}"),
        task(sshd, "move", "Move", "    from: /t-flow/in/orders.csv\n    to: /t-flow/archive/"),
        task(sshd, "downloads", "Downloads", "    from: /t-flow/old\n    action: MOVE\n"
             "    moveDirectory: /t-flow/done"),
        task(sshd, "delete", "Delete", "    uri: /t-flow/done\n    regExp: '.*\\.txt'"),
    ])  # fmt: skip
    outputs = {
        "uploaded": "outputs.upload.to",
        "names": "outputs.listing.files | jq('.[].name') | join(',')",
        "size": "outputs.listing.files[0].size",
        "from": "outputs.download.from",
        "to": "outputs.download.to",
        "checksum": "outputs.download.checksum",
        "moved": "outputs.move.to",
        "fetched": "outputs.downloads.outputFiles | keys | join(',')",
        "deleted": "outputs.delete.uris | join(',')",
    }
    state, done = run_flow(tmp_path, sshd, tasks, outputs, data)
    assert done.returncode == 0, done.stdout + done.stderr
    out = run_outputs(done)
    assert out["uploaded"] == "sftp://127.0.0.1/t-flow/in/orders.csv"
    assert out["names"] == "c.log,a.log"
    assert out["size"] == "5"
    assert out["from"] == "sftp://127.0.0.1/t-flow/in/orders.csv"
    assert out["checksum"] == digest
    assert stored_file(state, out["to"]).read_bytes() == data.read_bytes()
    assert out["moved"] == "sftp://127.0.0.1/t-flow/archive/orders.csv"
    assert (home / "archive" / "orders.csv").read_bytes() == data.read_bytes()
    assert not (home / "in" / "orders.csv").exists()
    assert out["fetched"] == "a.log,b.txt"
    assert sorted(p.name for p in (home / "done").iterdir()) == ["a.log"]  # b.txt deleted by the Delete task
    assert out["deleted"] == "sftp://127.0.0.1/t-flow/done/b.txt"
    assert sorted(p.name for p in (home / "old").iterdir()) == ["deep"]  # not recursive: deep/c.log stays
    assert sshd.password not in done.stdout + done.stderr


def test_key_login_uploads_several_files_and_refuses_to_overwrite_when_told(sshd: SshServer, tmp_path: Path) -> None:
    home = sshd.folder("t-keys")
    data = tmp_path / "report.txt"
    data.write_text("report\n")
    tasks = "\n".join([
        task(sshd, "one", "Upload", '    from: "{{ inputs.data }}"\n    to: /t-keys/out/', how="key"),
        task(sshd, "many", "Uploads", '    from:\n      copy.txt: "{{ inputs.data }}"\n'
             '      again.txt: "{{ inputs.data }}"\n    to: /t-keys/many', how="key"),
        task(sshd, "again", "Upload", '    from: "{{ inputs.data }}"\n    to: /t-keys/out/report.txt\n'
             "    overwrite: false", how="key"),
    ])  # fmt: skip
    _, done = run_flow(tmp_path, sshd, tasks, {"x": "outputs.many.files | join(',')"}, data)
    shown = done.stdout + done.stderr
    assert done.returncode != 0
    assert (home / "out" / "report.txt").read_text() == "report\n"
    assert sorted(p.name for p in (home / "many").iterdir()) == ["again.txt", "copy.txt"]
    assert "the file sftp://127.0.0.1/t-keys/out/report.txt already exists and overwrite is false" in shown
    assert sshd.passphrase not in shown


def test_a_wrong_host_key_a_missing_folder_and_a_bad_checksum_are_explained(sshd: SshServer, tmp_path: Path) -> None:
    sshd.folder("t-errors")
    known = '    strictHostKeyChecking: "yes"\n    knownHosts: |\n      ' + sshd.wrong_known_hosts.strip()
    _, done = run_flow(tmp_path / "key", sshd, task(sshd, "ls", "List", "    from: /t-errors\n" + known), {})
    assert done.returncode != 0
    assert "is not the one knownHosts gives" in done.stdout + done.stderr

    right = '    strictHostKeyChecking: "yes"\n    knownHosts: |\n      ' + sshd.known_hosts.strip()
    _, done = run_flow(tmp_path / "missing", sshd, task(sshd, "ls", "List", "    from: /t-errors/nope\n" + right), {})
    assert done.returncode != 0
    assert "the folder sftp://127.0.0.1/t-errors/nope does not exist" in done.stdout + done.stderr

    (sshd.folder("t-errors") / "f.txt").write_text("content")
    body = "    from: /t-errors/f.txt\n    validateChecksum: true\n    checksumExpected: abc123"
    _, done = run_flow(tmp_path / "sum", sshd, task(sshd, "get", "Download", body), {})
    assert done.returncode != 0
    assert "the checksum of sftp://127.0.0.1/t-errors/f.txt is " in done.stdout + done.stderr
    assert "not the expected abc123" in done.stdout + done.stderr


def test_root_dir_false_reads_absolute_paths(sshd: SshServer, tmp_path: Path) -> None:
    home = sshd.folder("t-absolute")
    (home / "x.csv").write_text("1\n")
    sshd.own(home / "x.csv")
    body = f"    from: {home}\n    rootDir: false"
    _, done = run_flow(tmp_path, sshd, task(sshd, "ls", "List", body), {"path": "outputs.ls.files[0].path"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert run_outputs(done) == {"path": f"{home}/x.csv"}


# The Trigger: polls with real run contexts (storage and a SQLite key-value store shared by the pollers).


def trigger(sshd: SshServer, folder: str, **extra: Any) -> Trigger:
    data = {
        "id": "watch", "type": "io.kestra.plugin.fs.sftp.Trigger", "host": sshd.host, "port": str(sshd.port),
        "username": sshd.user, "password": sshd.password, "from": folder, "interval": "PT10S", **extra,
    }  # fmt: skip
    return Trigger.model_validate(data)


def drop(folder: Path, names: list[str]) -> None:
    for name in names:
        (folder / name).write_text(f"content of {name}")
        shutil.chown(folder / name, folder.owner(), folder.group())  # the test user's folder (sshd.folder)


def poll_together(tmp_path: Path, make: Any, pollers: int) -> list[list[dict[str, Any]]]:
    """`pollers` threads poll at once, each with a run context of its own over one key-value store."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    kv = SqliteKeyValue(tmp_path / "kv.db")
    results: list[list[dict[str, Any]]] = [[] for _ in range(pollers)]
    errors: list[BaseException] = []
    start = threading.Barrier(pollers)

    def one(i: int) -> None:
        ctx = make_context(tmp_path / f"p{i}", execution_id=f"exec{i}", kv=kv)
        start.wait()
        try:
            fired = make().claim(ctx)
        except BaseException as exc:  # reported below
            errors.append(exc)
            return
        results[i] = fired["files"] if fired else []

    threads = [threading.Thread(target=one, args=(i,)) for i in range(pollers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


@pytest.mark.parametrize("action", ["MOVE", "DELETE"])
def test_the_trigger_fires_each_file_exactly_once_across_concurrent_pollers(
    sshd: SshServer, tmp_path: Path, action: str
) -> None:
    home = sshd.folder(f"t-trigger-{action.lower()}")
    names = [f"file{i:02}.csv" for i in range(12)] + ["skip.txt"]
    drop(home / "", names)
    root = f"/{home.name}"
    extra = {"action": action, "regExp": ".*\\.csv", "maxFiles": 100}
    if action == "MOVE":
        extra["moveDirectory"] = f"{root}/archive"
    results = poll_together(tmp_path, lambda: trigger(sshd, root, **extra), pollers=4)
    fired = [entry["name"] for result in results for entry in result]
    assert sorted(fired) == sorted(n for n in names if n.endswith(".csv"))  # each once, none twice
    for result in results:
        for entry in result:
            assert entry["changeType"] == "CREATE"
            assert entry["path"].startswith("kestra:///")
    assert sorted(p.name for p in home.iterdir() if p.is_file()) == ["skip.txt"]
    if action == "MOVE":
        assert sorted(p.name for p in (home / "archive").iterdir()) == sorted(n for n in names if n.endswith(".csv"))
    ctx = make_context(tmp_path / "again", kv=SqliteKeyValue(tmp_path / "kv.db"))
    assert trigger(sshd, root, **extra).claim(ctx) is None  # nothing new: nothing fires


def test_the_trigger_hands_out_the_downloaded_content_and_limits_each_poll(sshd: SshServer, tmp_path: Path) -> None:
    home = sshd.folder("t-trigger-limit")
    drop(home, ["c.csv", "a.csv", "b.csv"])
    ctx = make_context(tmp_path / "one")
    watch = trigger(sshd, f"/{home.name}", action="DELETE", maxFiles=2, sort="NAME_ASC")
    first = watch.claim(ctx)
    assert first is not None
    assert [f["name"] for f in first["files"]] == ["a.csv", "b.csv"]
    assert ctx.storage.path(first["files"][0]["path"]).read_text() == "content of a.csv"
    assert "Too many files to process (3), limiting to 2" in ctx.logger.messages("WARN")  # type: ignore[attr-defined]
    second = watch.claim(make_context(tmp_path / "two"))
    assert second is not None
    assert [f["name"] for f in second["files"]] == ["c.csv"]


def test_the_trigger_with_action_none_fires_once_per_version(sshd: SshServer, tmp_path: Path) -> None:
    home = sshd.folder("t-trigger-none")
    drop(home, ["keep.csv"])
    kv = SqliteKeyValue(tmp_path / "kv.db")
    watch = trigger(sshd, f"/{home.name}", action="NONE")
    fired = watch.claim(make_context(tmp_path / "1", kv=kv))
    assert fired is not None
    assert [(f["name"], f["changeType"]) for f in fired["files"]] == [("keep.csv", "CREATE")]
    assert watch.claim(make_context(tmp_path / "2", kv=kv)) is None
    assert (home / "keep.csv").exists()
    (home / "keep.csv").write_text("changed, longer content")
    os.utime(home / "keep.csv", (2_000_000_000, 2_000_000_000))
    changed = watch.claim(make_context(tmp_path / "3", kv=kv))
    assert changed is not None
    assert [(f["name"], f["changeType"]) for f in changed["files"]] == [("keep.csv", "UPDATE")]
    only_new = trigger(sshd, f"/{home.name}", action="NONE", on="CREATE", stateKey="other")
    results = poll_together(tmp_path / "race", lambda: only_new, pollers=3)
    assert sum(len(r) for r in results) == 1


def test_the_trigger_waits_for_a_missing_folder_and_refuses_move_without_a_folder(
    sshd: SshServer, tmp_path: Path
) -> None:
    assert trigger(sshd, "/t-not-there", action="DELETE").claim(make_context(tmp_path)) is None
    with pytest.raises(ValueError, match="action MOVE needs moveDirectory"):
        trigger(sshd, "/t-not-there", action="MOVE")
    bad = trigger(sshd, "/t-not-there", action="DELETE", password="wrong-password-456")
    with pytest.raises(TaskFailed, match="refused the login"):
        bad.claim(make_context(tmp_path / "bad"))


def test_key_exchange_choice_and_proxies_are_checked(sshd: SshServer, tmp_path: Path) -> None:
    home = sshd.folder("t-kex")
    (home / "k.txt").write_text("k")
    body = "    from: /t-kex\n    keyExchangeAlgorithm: diffie-hellman-group14-sha256"
    _, done = run_flow(tmp_path / "good", sshd, task(sshd, "ls", "List", body), {"n": "outputs.ls.files[0].name"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert run_outputs(done) == {"n": "k.txt"}

    body = "    from: /t-kex\n    keyExchangeAlgorithm: made-up-kex"
    _, done = run_flow(tmp_path / "bad", sshd, task(sshd, "ls", "List", body), {})
    assert done.returncode != 0
    assert "keyExchangeAlgorithm 'made-up-kex' is not one gitsync knows: " in done.stdout + done.stderr

    body = "    from: /t-kex\n    proxyType: SOCKS5\n    proxyAddress: 127.0.0.1\n    proxyPort: '1080'"
    _, done = run_flow(tmp_path / "proxy", sshd, task(sshd, "ls", "List", body), {})
    assert done.returncode != 0
    assert "gitsync does not connect to SFTP servers through a proxy (proxyType, proxyAddress, proxyPort)" in (
        done.stdout + done.stderr
    )


def test_delete_a_folder_needs_recursive_and_a_missing_path_fails_only_when_asked(
    sshd: SshServer, tmp_path: Path
) -> None:
    home = sshd.folder("t-delete")
    (home / "tree" / "sub").mkdir(parents=True)
    (home / "tree" / "sub" / "x.txt").write_text("x")
    (home / "tree" / "y.txt").write_text("y")
    sshd.own(home / "tree", *(home / "tree").rglob("*"))
    tasks = "\n".join([
        task(sshd, "missing", "Delete", "    uri: /t-delete/nothing-here"),
        task(sshd, "tree", "Delete", "    uri: /t-delete/tree\n    recursive: true"),
        task(sshd, "folder", "Delete", "    uri: /t-delete"),
    ])  # fmt: skip
    _, done = run_flow(tmp_path / "a", sshd, tasks, {})
    shown = done.stdout + done.stderr
    assert done.returncode != 0
    assert not (home / "tree").exists()
    assert "sftp://127.0.0.1/t-delete is a folder: set recursive: true to delete it with its content" in shown
    assert home.exists()

    strict = task(sshd, "missing", "Delete", "    uri: /t-delete/nothing-here\n    errorOnMissing: true")
    _, done = run_flow(tmp_path / "b", sshd, strict, {})
    assert done.returncode != 0
    assert "there is nothing to delete at sftp://127.0.0.1/t-delete/nothing-here" in done.stdout + done.stderr


def test_uploads_keeps_the_uris_its_reg_exp_matches(sshd: SshServer, tmp_path: Path) -> None:
    home = sshd.folder("t-uploads")
    data = tmp_path / "table.csv"
    data.write_text("a\n")
    body = '    from: ["{{ inputs.data }}"]\n    regExp: ".*\\\\.json"\n    to: /t-uploads'
    _, done = run_flow(tmp_path / "none", sshd, task(sshd, "up", "Uploads", body), {"n": "outputs.up.files | length"},
                       data)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert run_outputs(done) == {"n": "0"}
    assert list(home.iterdir()) == []
    body = '    from: \'["{{ inputs.data }}"]\'\n    regExp: ".*\\\\.csv"\n    to: /t-uploads'
    _, done = run_flow(tmp_path / "one", sshd, task(sshd, "up", "Uploads", body), {"f": "outputs.up.files[0]"}, data)
    assert done.returncode == 0, done.stdout + done.stderr
    assert run_outputs(done)["f"].startswith("sftp://127.0.0.1/t-uploads/")
    assert [p.read_text() for p in home.iterdir()] == ["a\n"]
