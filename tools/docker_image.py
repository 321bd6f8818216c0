"""Build the hyperlab Docker image on a machine that reaches Debian's archive, PyPI and npm but maybe no
container registry — and run a Docker engine for as long as that takes.

Three jobs, each usable alone (the Docker test, ``bench/docker.py`` and ``make docker-image`` use them):

* :class:`Engine` — a Docker engine to talk to. One that is running is used and left alone; otherwise
  ``dockerd`` is started (as root, or through ``sudo -n``; no bridge, no iptables changes) and stopped
  again, by its own PID, at the end.
  A lock file serialises users on one machine, so a run never stops an engine another run is using.
* :func:`ensure_base` — the Dockerfile's base image (``debian:bookworm-slim``). Present: used. Pullable:
  pulled. Otherwise made from Debian's archive the way the official one is: ``debootstrap
  --variant=minbase``, trimmed like the slim image, ``docker import``-ed under the same name. The root
  file system is kept as a tarball in the cache, so only the first build on a machine bootstraps.
* :func:`build` — ``docker build`` with BuildKit on the host network; when the machine trusts a
  TLS-inspecting proxy (``$SSL_CERT_FILE``), its CA bundle goes in as the build secret ``ca``, which the
  Dockerfile mounts only while npm and pip download: it never lands in a layer of any image.

Standard library only: it runs before any virtual environment exists.
``python3 tools/docker_image.py --help``.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

ROOT = Path(__file__).resolve().parent.parent

#: The Dockerfile's ``ARG DEBIAN_IMAGE`` default; the debootstrapped stand-in is tagged with this name.
DEBIAN_IMAGE = "debian:bookworm-slim"
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = os.environ.get("HYPERLAB_DEBIAN_MIRROR", "http://deb.debian.org/debian")
CACHE_DIR = Path(os.environ.get("HYPERLAB_DOCKER_CACHE")
                 or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hyperlab" / "docker")
LOCK_FILE = Path(tempfile.gettempdir()) / "hyperlab-docker.lock"
ENGINE_START_TIMEOUT_S = 60.0
#: A dockerd started here touches nothing of the host's network: no bridge, no iptables rules, no IP
#: forwarding. Builds and containers use the host network (serving on 127.0.0.1 only).
DOCKERD_ARGS = ("--bridge=none", "--iptables=false", "--ip-forward=false")
ENGINE_STOP_TIMEOUT_S = 30.0

# What the official slim images leave out (docs, manuals, translations, apt's lists), and the dpkg rule
# that keeps later `apt-get install` in the Dockerfile from bringing them back.
_TRIM = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "var/lib/apt/lists",
         "var/cache/apt/archives", "var/cache/debconf", "var/log")
_DPKG_EXCLUDE = """\
# hyperlab's debootstrapped base, as in Debian's slim images: no docs, manuals or translations.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
"""
# ... and the apt rule that drops downloaded packages and apt's caches after each run (also theirs).
_APT_CLEAN = """\
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
"""


class EngineUnavailable(Exception):
    """No Docker engine can run here (no privileges to start one); the message says why."""


def log(message: str) -> None:
    print(f"docker_image: {message}", file=sys.stderr, flush=True)


def docker_client() -> str:
    """Debian's client (BuildKit built in); a newer one earlier on PATH may need the missing buildx plugin."""
    for candidate in (os.environ.get("HYPERLAB_DOCKER"), "/usr/bin/docker", shutil.which("docker")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise SystemExit("docker_image: no docker client; install Debian's docker.io (make setup does)")


def _succeeds(cmd: list[str]) -> bool:
    return subprocess.run(cmd, check=False, capture_output=True, timeout=60).returncode == 0


def _privileged() -> list[str] | None:
    """The prefix that runs a command as root: [] for root, ["sudo", "-n"] if allowed, else None."""
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and _succeeds(["sudo", "-n", "true"]):
        return ["sudo", "-n"]
    return None


class Engine:
    """``with Engine() as engine: engine.run("ps")`` — a reachable Docker engine for the block's duration."""

    def __init__(self, log_path: Path | None = None) -> None:
        self.client = docker_client()
        self.prefix: list[str] = []
        self.log_path = log_path or Path(tempfile.gettempdir()) / f"hyperlab-dockerd-{os.getpid()}.log"
        self.started: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None

    # --- talking to it ---
    def cmd(self, *args: str) -> list[str]:
        return [*self.prefix, self.client, *args]

    def run(self, *args: str, check: bool = True,
            timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """``docker ARGS`` → its result (text); ``check`` raises with docker's own message on failure."""
        result = subprocess.run(self.cmd(*args), check=False, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args[:3])} failed ({result.returncode}): "
                               f"{result.stderr.strip()[-2000:]}")
        return result

    def reachable(self) -> bool:
        """True if an engine answers, directly or (not root, socket not ours) through ``sudo -n``."""
        sudo = _privileged() if os.geteuid() != 0 else None
        for prefix in ([], sudo) if sudo else ([],):
            self.prefix = prefix
            if _succeeds(self.cmd("info")):
                return True
        self.prefix = []
        return False

    # --- lifetime ---
    def __enter__(self) -> Self:
        LOCK_FILE.touch(exist_ok=True)
        self._lock = open(LOCK_FILE, "a")  # held until __exit__
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        try:
            if not self.reachable():
                self._start()
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self._stop()
        finally:
            self._release()

    def _start(self) -> None:
        prefix = _privileged()
        dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
        if prefix is None:
            raise EngineUnavailable("no Docker engine is running and starting dockerd needs root "
                                    "(not root, and `sudo -n` is not allowed)")
        if not os.access(dockerd, os.X_OK):
            raise SystemExit("docker_image: dockerd is missing; install Debian's docker.io (make setup does)")
        log(f"starting dockerd (log: {self.log_path})")
        with open(self.log_path, "ab") as out:
            self.started = subprocess.Popen([*prefix, dockerd, *DOCKERD_ARGS], stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        self.prefix = prefix
        deadline = time.monotonic() + ENGINE_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.started.poll() is not None:
                break
            if _succeeds(self.cmd("info")):
                return
            time.sleep(0.5)
        tail = self.log_path.read_text(errors="replace")[-3000:]
        self._stop()
        raise RuntimeError(f"dockerd did not come up within {ENGINE_START_TIMEOUT_S:.0f} s; its log ends:\n{tail}")

    def _stop(self) -> None:
        """Stop the dockerd this object started (only that one, by its PID); containers it ran stop with it."""
        proc, self.started = self.started, None
        if proc is None or proc.poll() is not None:
            return
        log(f"stopping the dockerd we started (pid {proc.pid})")
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(ENGINE_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def _release(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    # --- images ---
    def has_image(self, name: str) -> bool:
        return self.run("image", "inspect", name, check=False, timeout=60).returncode == 0

    def image_size(self, name: str) -> int:
        return int(self.run("image", "inspect", "--format", "{{.Size}}", name).stdout.strip())


# --- the base image --------------------------------------------------------------------------------------
def rootfs_tarball(cache_dir: Path = CACHE_DIR) -> Path:
    """A trimmed ``debootstrap --variant=minbase`` root file system as a tarball, made once per machine."""
    tarball = cache_dir / f"debian-{DEBIAN_SUITE}-minbase.tar"
    if tarball.is_file():
        return tarball
    prefix = _privileged()
    if prefix is None:
        raise EngineUnavailable("debootstrap needs root (not root, and `sudo -n` is not allowed)")
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not os.access(debootstrap, os.X_OK):
        raise SystemExit("docker_image: debootstrap is missing; install Debian's debootstrap (make setup does)")
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rootfs-", dir=cache_dir))
    target = work / "rootfs"
    try:
        log(f"debootstrap --variant=minbase {DEBIAN_SUITE} from {DEBIAN_MIRROR} (once per machine)")
        subprocess.run([*prefix, debootstrap, "--variant=minbase", DEBIAN_SUITE, str(target), DEBIAN_MIRROR],
                       check=True, stdout=subprocess.DEVNULL)
        script = (
            "set -e; cd \"$1\"; shift; for d in \"$@\"; do rm -rf \"./$d\"; mkdir -p \"./$d\"; done; "
            "mkdir -p var/lib/apt/lists/partial var/cache/apt/archives/partial; "
            "rm -f var/cache/apt/*.bin etc/hostname; : > etc/resolv.conf; "
            "printf %s \"$DPKG_EXCLUDE\" > etc/dpkg/dpkg.cfg.d/docker-slim; "
            "printf %s \"$APT_CLEAN\" > etc/apt/apt.conf.d/docker-clean"
        )
        subprocess.run([*prefix, "env", f"DPKG_EXCLUDE={_DPKG_EXCLUDE}", f"APT_CLEAN={_APT_CLEAN}",
                        "sh", "-c", script, "trim", str(target), *_TRIM], check=True)
        partial = tarball.with_suffix(".tar.partial")
        with open(partial, "wb") as out:
            subprocess.run([*prefix, "tar", "--numeric-owner", "-C", str(target), "-c", "."], stdout=out, check=True)
        partial.rename(tarball)
    finally:
        subprocess.run([*(prefix or []), "rm", "-rf", str(work)], check=False)
    return tarball


def ensure_base(engine: Engine, name: str = DEBIAN_IMAGE, pull: bool = True,
                cache_dir: Path = CACHE_DIR) -> str:
    """Make ``name`` available to ``docker build``; returns how: ``present``, ``pulled`` or ``debootstrap``."""
    if engine.has_image(name):
        return "present"
    if pull:
        result = engine.run("pull", name, check=False, timeout=300)
        if result.returncode == 0:
            return "pulled"
        log(f"cannot pull {name} ({result.stderr.strip().splitlines()[-1] if result.stderr.strip() else '?'}); "
            "making it from Debian's archive")
    tarball = rootfs_tarball(cache_dir)
    with open(tarball, "rb") as data:
        subprocess.run(engine.cmd("import", "--change", 'CMD ["bash"]', "--change", "ENV LANG=C.UTF-8",
                                  "--message", f"debootstrap --variant=minbase {DEBIAN_SUITE} {DEBIAN_MIRROR}",
                                  "-", name), stdin=data, check=True, stdout=subprocess.DEVNULL)
    return "debootstrap"


# --- the image ---------------------------------------------------------------------------------------------
def proxy_ca() -> Path | None:
    """The machine's CA bundle when it is set explicitly (a TLS-inspecting proxy's CA is in it)."""
    for var in ("HYPERLAB_BUILD_CA", "SSL_CERT_FILE"):
        value = os.environ.get(var)
        if value and Path(value).is_file():
            return Path(value)
    return None


def build(engine: Engine, tag: str, base: str = DEBIAN_IMAGE, ca: Path | None = None,
          context: Path = ROOT, quiet: bool = True, no_cache: bool = False) -> float:
    """``docker build`` the hyperlab image as ``tag``; returns the seconds it took."""
    args = ["build", "--network", "host", "--build-arg", f"DEBIAN_IMAGE={base}", "--tag", tag]
    if no_cache:
        args.append("--no-cache")
    if ca is not None:
        args += ["--secret", f"id=ca,src={ca}"]
    if quiet:
        args.append("--quiet")
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    started = time.monotonic()
    result = subprocess.run(engine.cmd(*args, str(context)), check=False, env=env, text=True,
                            capture_output=quiet)
    if result.returncode != 0:
        raise RuntimeError(f"docker build failed ({result.returncode}):\n{(result.stderr or '')[-4000:]}")
    return time.monotonic() - started


class Server:
    """A hyperlab container on the host network, serving on 127.0.0.1 only (never on the bridge's addresses).

    ``volume`` is mounted as the data directory (disks, progress). ``stop()`` is ``docker stop`` (SIGTERM,
    as on a host shutdown), then the container is removed: only the volume carries anything over.
    """

    def __init__(self, engine: Engine, image: str, volume: str, port: int, env: dict[str, str] | None = None,
                 name: str | None = None) -> None:
        self.engine, self.image, self.volume, self.port = engine, image, volume, port
        self.env = dict(env or {})
        self.name = name or f"hyperlab-{os.getpid()}-{port}"
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"
        self.started_at: float | None = None

    def start(self) -> Self:
        args = ["run", "--detach", "--name", self.name, "--network", "host", "--no-healthcheck",
                "--volume", f"{self.volume}:/home/hyperlab/data"]
        for key, value in self.env.items():
            args += ["--env", f"{key}={value}"]
        self.started_at = time.monotonic()
        self.engine.run(*args, self.image, "hyperlab", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                        timeout=120)
        return self

    def running(self) -> bool:
        result = self.engine.run("inspect", "--format", "{{.State.Running}}", self.name, check=False, timeout=60)
        return result.stdout.strip() == "true"

    def logs(self) -> str:
        result = self.engine.run("logs", "--tail", "60", self.name, check=False, timeout=60)
        return (result.stdout + result.stderr)[-6000:]

    def exec(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.engine.run("exec", self.name, *args, check=False, timeout=120)

    def stop(self) -> None:
        self.engine.run("stop", "--time", "20", self.name, check=False, timeout=120)
        self.engine.run("rm", "--force", self.name, check=False, timeout=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the hyperlab Docker image (base from Debian's archive "
                                                 "when no registry is reachable).")
    parser.add_argument("--tag", default="hyperlab", help="the image's name (default hyperlab)")
    parser.add_argument("--no-pull", action="store_true",
                        help=f"never pull {DEBIAN_IMAGE}: make it with debootstrap if it is not present")
    parser.add_argument("--ca", type=Path, default=proxy_ca(),
                        help="CA bundle for npm and pip in the build, as a build secret "
                             "(default: $HYPERLAB_BUILD_CA or $SSL_CERT_FILE when set)")
    args = parser.parse_args(argv)
    with Engine() as engine:
        how = ensure_base(engine, pull=not args.no_pull)
        seconds = build(engine, args.tag, ca=args.ca, quiet=False)
        print(json.dumps({"image": args.tag, "base": how, "build_s": round(seconds, 1),
                          "size_mb": round(engine.image_size(args.tag) / 1e6, 1)}))
        if engine.started is not None:
            log("the image stays in the engine's store; start dockerd again to run it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
