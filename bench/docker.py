"""The Docker image: its size, how long it takes to build, and how long from ``docker run`` to a lab prompt.

(a) build, three ways, on the engine ``tools/docker_image.py`` finds or starts (the base image
    ``debian:bookworm-slim`` present — made by debootstrap here, ~40 s once per machine, not timed):
    - ``--no-cache``: every layer built again (apt, npm ci, pip wheels; BuildKit's npm and pip download
      caches stay warm, so this is the floor of a first build, downloads aside);
    - after a change to one source file (a copy of the tracked files): the dependency layers are reused;
    - nothing changed: every layer from the cache.
(b) size of the image (and of the base).
(c) ``docker run`` → ``/healthz`` answers, and → a lab's prompt: a fresh container on a fresh volume,
    host network, serving on 127.0.0.1; a session (``POST /api/labs`` creates the lab), then child1's
    console over the WebSocket until ``child1$ ``. Host wall clock, from just before ``docker run``.

``python -m bench.docker`` (needs root or a running engine; ``make bench`` runs it with the others).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import websocket

from bench._common import emit, figure, log

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import docker_image as tool  # tools/ holds stdlib-only scripts, not a package

TAG = "hyperlab:bench"
RUNS = 5


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def changed_copy(into: Path) -> Path:
    """The tracked files, with one source file changed (a comment): what a developer's next build sees."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        src, dest = ROOT / name, into / name
        if src.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
    with open(into / "web" / "app.py", "a") as f:
        f.write(f"# bench {secrets.token_hex(4)}\n")
    return into


def run_to_prompt(engine: tool.Engine) -> tuple[float, float]:
    """Seconds from ``docker run`` to /healthz, and to child1's prompt on a new lab."""
    volume = f"hyperlab-bench-{secrets.token_hex(4)}"
    engine.run("volume", "create", volume)
    server = tool.Server(engine, TAG, volume, free_port())
    try:
        started = time.monotonic()
        server.start()
        while True:
            try:
                if requests.get(server.url + "/healthz", timeout=5).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.02)
            if time.monotonic() - started > 120:
                raise RuntimeError(f"no /healthz in 120 s:\n{server.logs()}")
        healthy = time.monotonic() - started
        s = requests.Session()
        lab = s.post(server.url + "/api/labs", timeout=120)
        lab.raise_for_status()
        cookie = "; ".join(f"{c.name}={c.value}" for c in s.cookies)
        ws = websocket.create_connection(
            f"ws://127.0.0.1:{server.port}/ws/labs/{lab.json()['id']}/partitions/child1/console",
            cookie=cookie, timeout=60)
        seen = b""
        while b"child1$ " not in seen:
            seen += ws.recv_data()[1]
        prompt = time.monotonic() - started
        ws.close()
        return healthy, prompt
    finally:
        server.stop()
        engine.run("volume", "rm", "--force", volume, check=False)


def main() -> None:
    engine = tool.Engine()
    try:
        engine.__enter__()
    except tool.EngineUnavailable as exc:  # `make bench` on a machine without Docker: say so, go on
        emit("docker", {}, skipped=f"no Docker engine can run here: {exc}")
        return
    try:
        measure(engine)
    finally:
        engine.__exit__(None, None, None)


def measure(engine: tool.Engine) -> None:
    how = tool.ensure_base(engine)
    ca = tool.proxy_ca()
    log("build --no-cache ...")
    no_cache = tool.build(engine, TAG, ca=ca, no_cache=True)
    with tempfile.TemporaryDirectory() as tmp:
        log("build after a one-file change ...")
        changed = tool.build(engine, TAG + "-changed", ca=ca, context=changed_copy(Path(tmp)))
        engine.run("rmi", TAG + "-changed", check=False)
    log("build, nothing changed ...")
    cached = tool.build(engine, TAG, ca=ca)
    size = engine.image_size(TAG) / 1e6
    base = engine.image_size(tool.DEBIAN_IMAGE) / 1e6
    healthz, prompt = [], []
    for i in range(RUNS):
        h, p = run_to_prompt(engine)
        log(f"run {i + 1}: /healthz {h:.2f} s, child1 prompt {p:.2f} s")
        healthz.append(h)
        prompt.append(p)
    emit("docker", {
        "build_no_cache_s": round(no_cache, 1),
        "build_after_source_change_s": round(changed, 1),
        "build_nothing_changed_s": round(cached, 1),
        "image_mb": round(size, 1),
        "base_image_mb": round(base, 1),
        "run_to_healthz_s": figure(healthz, "s", "host wall"),
        "run_to_lab_prompt_s": figure(prompt, "s", "host wall"),
    }, base_image=how)


if __name__ == "__main__":
    main()
