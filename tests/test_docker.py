"""The Docker image, built and run on a real Docker engine (``make docker-test`` runs this file alone).

The image is built from this tree the way a trainer builds it, with the base made from Debian's archive
when no registry can be reached (tools/docker_image.py), and the machine's CA bundle as a build secret.
A container on the host network, serving on 127.0.0.1 only, answers ``/healthz``; a student opens a
lesson, types into a console over the WebSocket and reads the answer, writes a file on a child's disk;
the container is stopped and removed, a new one is started on the same volume, and the student's
progress and disk are found again — with progress in SQLite on the volume, and in PostgreSQL. A dockerd this test started is stopped at the end (only that one).

Skipped only where no engine can run at all: no engine running, and no root (or ``sudo -n``) to start one.
"""

from __future__ import annotations

import importlib.util
import re
import secrets
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import requests
import yaml
from liveserver import free_port
from wsconsole import PROMPT_TIMEOUT_S, Console

from hyperlab.web import app as web_app

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "hyperlab:test"
LESSON = "meet-the-partitions"
STARTUP_TIMEOUT_S = 60.0
#: A line in the build secret: found in the image, it would mean the secret was baked into a layer.
SECRET_CANARY = b"# hyperlab docker test: this build secret must never be in an image"

# Building cold (base from debootstrap, every layer) takes minutes on a busy 2-core machine.
pytestmark = pytest.mark.timeout(1800)


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hyperlab_docker_image", ROOT / "tools" / "docker_image.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


tool = _load_tool()


@pytest.fixture(scope="module")
def engine() -> Iterator[object]:
    engine = tool.Engine()
    try:
        engine.__enter__()
    except tool.EngineUnavailable as exc:
        pytest.skip(f"no Docker engine can run on this machine: {exc}")
    try:
        yield engine
    finally:
        engine.__exit__(None, None, None)


@pytest.fixture(scope="module")
def build_secret(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The machine's CA bundle (if it has one) plus the canary line."""
    path = tmp_path_factory.mktemp("docker-secret") / "ca.pem"
    ca = tool.proxy_ca()
    path.write_bytes((ca.read_bytes() if ca else b"") + b"\n" + SECRET_CANARY + b"\n")
    return path


@pytest.fixture(scope="module")
def image(engine: object, build_secret: Path) -> str:
    tool.ensure_base(engine)
    tool.build(engine, IMAGE, ca=build_secret)
    return IMAGE


@pytest.fixture
def volume(engine: object) -> Iterator[str]:
    name = f"hyperlab-test-{secrets.token_hex(4)}"
    engine.run("volume", "create", name)
    try:
        yield name
    finally:
        engine.run("volume", "rm", "--force", name, check=False)


@pytest.fixture
def servers(engine: object) -> Iterator[list[object]]:
    """Containers a test starts; each is stopped and removed at the end, whatever happened."""
    started: list[object] = []
    yield started
    for server in started:
        server.stop()


def start_server(engine: object, servers: list[object], volume: str, port: int,
                 env: dict[str, str] | None = None) -> object:
    server = tool.Server(engine, IMAGE, volume, port, env)
    servers.append(server)
    server.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            response = requests.get(server.url + "/healthz", timeout=5)
            if response.status_code == 200:
                assert response.json()["ok"] is True
                return server
        except requests.ConnectionError:
            pass
        if not server.running():
            pytest.fail(f"the container exited; its log ends:\n{server.logs()}")
        time.sleep(0.2)
    pytest.fail(f"no /healthz answer within {STARTUP_TIMEOUT_S:.0f} s; the log ends:\n{server.logs()}")


def lesson_progress(server: object, s: requests.Session) -> dict:
    response = s.get(server.url + "/api/lessons", timeout=30)
    response.raise_for_status()
    return {lesson["id"]: lesson["progress"] for lesson in response.json()["lessons"]}


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_image_runs_a_lab_and_a_new_container_on_the_same_volume_finds_progress_and_disk(
        engine: object, image: str, volume: str, servers: list[object], database: str,
        request: pytest.FixtureRequest) -> None:
    # No HYPERLAB_SECRET_KEY: the server keeps its key in its database. SQLite: a file in the volume,
    # beside the disks. PostgreSQL (as in compose.yaml): a real server on this machine's loopback.
    env = {}
    if database == "postgresql":
        env["HYPERLAB_DATABASE_URL"] = request.getfixturevalue("postgres").new_database()
    first = start_server(engine, servers, volume, port=free_port(), env=env)

    # A student loads the page (their lasting session) and opens the first lesson: its lab boots.
    s = requests.Session()
    assert s.get(first.url + "/", timeout=30).ok
    response = s.post(f"{first.url}/api/lessons/{LESSON}/open", json={}, timeout=120)
    assert response.status_code == 200, response.text
    lab = response.json()["lab_description"]
    assert {p["name"]: p["state"] for p in lab["partitions"]} == {
        "root": "running", "child1": "running", "child2": "running"}

    # The first step wants `ver` typed in the root's console: over the WebSocket, as the page does.
    root = Console(first.ws_url, s, lab["id"], "root")
    root.wait_prompt()
    answer = root.type("ver")
    assert "hypervisor: present" in answer and "CreatePartitions" in answer, answer
    root.close()
    deadline = time.monotonic() + PROMPT_TIMEOUT_S
    while "the-root" not in s.get(f"{first.url}/api/lessons/{LESSON}/state", timeout=30).json()["completed"]:
        assert time.monotonic() < deadline, "the step's check (root.syscalls went up) was never met"
        time.sleep(0.5)
    assert lesson_progress(first, s)[LESSON]["completed"] == 1

    # A file on child1's disk (a VHD in the volume).
    token = secrets.token_hex(8)
    child1 = Console(first.ws_url, s, lab["id"], "child1")
    child1.wait_prompt()
    child1.type(f"write docker.txt {token}")
    assert token in child1.type("cat docker.txt")
    child1.close()

    # Stop and remove the container (SIGTERM, as on a host shutdown): only the volume carries anything over.
    first.stop()
    assert not first.running()

    second = start_server(engine, servers, volume, port=first.port, env=env)
    assert lesson_progress(second, s)[LESSON]["completed"] == 1
    again = s.post(second.url + "/api/labs", timeout=120)
    assert again.ok and again.json()["id"] == lab["id"], again.text  # the student's lab, on the same disks
    child1 = Console(second.ws_url, s, lab["id"], "child1")
    child1.wait_prompt()
    assert token in child1.type("cat docker.txt")
    child1.close()


def test_build_secret_is_in_no_layer_of_the_image(engine: object, image: str) -> None:
    """The CA bundle was mounted as a secret while npm and pip downloaded: no file, variable or history
    entry of the image carries it."""
    config = engine.run("image", "inspect", "--format", "{{json .Config.Env}} {{json .Config.Labels}}", image).stdout
    history = engine.run("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
    assert "BEGIN CERTIFICATE" not in config + history and SECRET_CANARY.decode() not in config + history
    container = engine.run("create", image).stdout.strip()
    carriers = []
    try:
        with subprocess.Popen(engine.cmd("export", container), stdout=subprocess.PIPE) as export, \
                tarfile.open(fileobj=export.stdout, mode="r|") as tar:
            for member in tar:
                data = tar.extractfile(member) if member.isfile() else None
                if data is not None and SECRET_CANARY in data.read():
                    carriers.append(member.name)
        assert export.returncode == 0
    finally:
        engine.run("rm", container, check=False)
    assert not carriers, f"the build secret reached the image: {carriers}"


def test_compose_file_fits_the_image_and_the_app() -> None:
    """compose.yaml (a class: hyperlab + PostgreSQL + volumes) agrees with the Dockerfile and the settings
    the app reads: the data volume where the image keeps its data, the port it serves, a PostgreSQL URL
    to the compose service with the password the database was made with, only settings that exist."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    dockerfile = (ROOT / "Dockerfile").read_text()
    web, db = compose["services"]["hyperlab"], compose["services"]["postgres"]

    [volume_path] = re.findall(r"^VOLUME (\S+)$", dockerfile, re.MULTILINE)
    [port] = re.findall(r"^EXPOSE (\d+)$", dockerfile, re.MULTILINE)
    assert any(v.split(":")[1] == volume_path and v.split(":")[0] in compose["volumes"] for v in web["volumes"])
    assert any(p.rsplit(":", 1)[1] == port for p in web["ports"])
    assert any(v.split(":")[0] in compose["volumes"] and v.endswith(":/var/lib/postgresql/data")
               for v in db["volumes"])
    assert web["build"]["args"].keys() <= set(re.findall(r"^ARG (\w+)", dockerfile, re.MULTILINE))

    unknown = set(web["environment"]) - set(web_app._ENV_KEYS)
    assert not unknown, f"compose.yaml sets settings the app does not read: {unknown}"
    url = re.fullmatch(r"postgresql://(\w+):(\$\{\w+[^}]*\})@(\w+):5432/(\w+)", web["environment"]["HYPERLAB_DATABASE_URL"])
    assert url, web["environment"]["HYPERLAB_DATABASE_URL"]
    user, password, host, name = url.groups()
    assert host == "postgres" and "postgres" in web["depends_on"]
    env = db["environment"]
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]) == (user, password, name)
