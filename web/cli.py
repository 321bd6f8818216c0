"""The ``hyperlab`` command: ``serve`` the site, ``run`` a lab headless and type into a partition, or
check and replay ``lessons``.

``hyperlab run --type TEXT ...`` boots a fresh lab, waits for the shell prompt of a
partition, types each TEXT + Enter (waiting for the prompt again, or for the
partition to stop or crash), and prints the transcript. It is how tests and
scripts drive real guest code without a browser.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from hyperlab.core.lab import DEFAULT_PARTITIONS
from hyperlab.core.placement import DESIGN_NAMES, Design

PROMPT_TIMEOUT = 30.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hyperlab", description="A teaching lab: a real hypervisor at work.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the site")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--debug", action="store_true", help="Flask's development server with reloading off")
    serve.add_argument("--connections", type=int, default=10_000,
                       help="most simultaneous connections, WebSockets included (default 10000)")

    run = sub.add_parser("run", help="boot a lab headless, type into a partition, print the transcript")
    run.add_argument("--design", choices=DESIGN_NAMES, default=Design.MICROKERNEL.value,
                     help="where device models, VSPs and workers run (docs/architecture.md; default microkernel)")
    run.add_argument("--partition", default="child1", help="the partition to type into (default child1)")
    run.add_argument("--no-ic", action="append", default=[], metavar="NAME",
                     help="boot NAME without Integration Services (repeatable)")
    run.add_argument("--data-dir", type=Path, help="keep the lab's disks in DIR")
    run.add_argument("--type", action="append", default=[], metavar="TEXT", dest="texts",
                     help="a line to type, followed by Enter (repeatable)")
    run.add_argument("--timeout", type=float, default=PROMPT_TIMEOUT,
                     help="seconds to wait for each prompt (default 30)")
    run.add_argument("--fault", action="append", default=[], metavar="COMPONENT", dest="faults",
                     help="after the typed lines, fail COMPONENT (e.g. child2.ide, child2.worker, child1.storvsp, "
                          "root.kernel, child2.vmm, hypervisor) as if its code raised; then the lab settles "
                          "(repeatable)")
    run.add_argument("--json", action="store_true",
                     help="print a JSON object (transcript, partitions, counters, design, components, tcb)")

    lessons = sub.add_parser("lessons", help="check lesson files, or replay their solutions on a real lab")
    lsub = lessons.add_subparsers(dest="lessons_command", required=True)
    check = lsub.add_parser("check", help="validate lesson files; print each problem as file:line: message")
    check.add_argument("paths", nargs="*", metavar="PATH",
                       help="lesson files or folders (default: the packaged lessons)")
    test = lsub.add_parser("test", help="replay each lesson's solution on a headless lab; one line per step")
    test.add_argument("paths", nargs="*", metavar="PATH",
                      help="lesson files or folders (default: the packaged lessons)")
    test.add_argument("--json", action="store_true", help="print one JSON object at the end")
    test.add_argument("--timeout", type=float, default=30.0,
                      help="seconds to wait for each prompt and each check (default 30)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return serve(args.host, args.port, args.debug, args.connections)
    if args.command == "lessons":
        return lessons_check(args.paths) if args.lessons_command == "check" else lessons_test(args)
    return run(args)


# --- serve -------------------------------------------------------------------------------------------
def serve(host: str, port: int, debug: bool, connections: int) -> int:
    """gunicorn with one gevent worker: labs live in its memory, so one process; every connection is a
    greenlet (a few KiB), so idle WebSockets and clients that send their headers slowly cost memory, not
    the threads a student's request needs (gthread's fixed pool was exhausted by 256 idle sockets)."""
    from hyperlab.web.app import create_app
    from hyperlab.web.db import default_data_dir

    # A served site keeps its students' disks beside their progress unless told where (a class comes back
    # the next day to both); `create_app` alone (tests, embedding) keeps none without a data dir.
    os.environ.setdefault("HYPERLAB_DATA_DIR", str(default_data_dir()))

    if debug:
        create_app().run(host=host, port=port, debug=True, use_reloader=False, threaded=True)
        return 0
    from gunicorn.app.base import BaseApplication

    _raise_open_files(connections + 256)

    class _Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in {
                "bind": f"{host}:{port}", "workers": 1, "worker_class": "gevent",
                "worker_connections": connections, "timeout": 0, "graceful_timeout": 5, "accesslog": "-",
                "control_socket_disable": True,
                # A request head must be complete within this time (and an idle keep-alive connection
                # ends after it): a client that sends its headers slowly is closed, not waited for.
                "keepalive": 5,
            }.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self) -> Any:
            return create_app()

    print(f"hyperlab: serving on http://{host}:{port}", file=sys.stderr, flush=True)
    _Server().run()
    return 0


def _raise_open_files(wanted: int) -> None:
    """Every connection is a file descriptor: lift the soft limit (often 1024) towards ``wanted``."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# --- run ---------------------------------------------------------------------------------------------
def _settings(args: argparse.Namespace) -> dict[str, Any]:
    names = [p["name"] for p in DEFAULT_PARTITIONS]
    for name in args.no_ic + [args.partition]:
        if name not in names:
            raise SystemExit(f"hyperlab run: no partition named {name!r} (the lab has {', '.join(names)})")
    parts = [dict(p) for p in DEFAULT_PARTITIONS]
    for p in parts:
        if p["name"] in args.no_ic:
            p["integration_services"] = False
    settings: dict[str, Any] = {"design": args.design, "partitions": parts}
    if args.data_dir is not None:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        settings["data_dir"] = str(args.data_dir.resolve())
    return settings


def run(args: argparse.Namespace) -> int:
    from hyperlab.web.labs import LabError, LabHandle
    from hyperlab.web.shell import ConsoleLog, console_text

    settings = _settings(args)
    lab = LabHandle("cli", settings)
    name = args.partition
    try:
        lab.wait_ready()
        with ConsoleLog(lab, name) as log:
            boot = log.wait_prompt(0, args.timeout)
            if not boot.found:
                print(f"hyperlab run: {name} showed no prompt within {args.timeout:.0f} s", file=sys.stderr)
                return 1
            assert lab.started_at is not None and boot.seen_at is not None
            boot_ms = (boot.seen_at - lab.started_at) * 1000
            for text in args.texts:
                mark = log.mark()
                lab.send_console(name, text.encode() + b"\r")
                if not log.wait_prompt(mark, args.timeout, typed=True).found:
                    state = lab.partition(name)["state"]
                    if state not in ("crashed", "off", "stopping"):
                        print(f"hyperlab run: {name} showed no prompt within {args.timeout:.0f} s after "
                              f"{text!r}", file=sys.stderr)
                        return 1
                    break  # the partition stopped or crashed: the transcript says why
            for component in args.faults:
                lab.fault(component)
            if args.faults:
                _settle(lab, log)
        transcript = console_text(lab.console_text(name))
        describe = lab.describe()
        counters = lab.counters() if lab.alive else {}
    except LabError as e:
        print(f"hyperlab run: {e.message}", file=sys.stderr)
        return 1
    finally:
        lab.close()
    if args.json:
        print(json.dumps({
            "transcript": transcript, "boot_ms": round(boot_ms, 1),
            "partitions": {p["name"]: p["state"] for p in describe["partitions"]},
            "reasons": {p["name"]: p["reason"] for p in describe["partitions"] if p.get("reason")},
            "counters": counters,
            "design": describe["design"],
            "components": [{k: c[k] for k in ("name", "domain", "lines", "bytes")}
                           for c in describe.get("components", [])],
            "tcb": {d: {"lines": t["lines"], "bytes": t["bytes"]} for d, t in describe.get("tcb", {}).items()},
        }, indent=2))
    else:
        print(transcript, end="" if transcript.endswith("\n") else "\n")
    return 0


def _settle(lab: Any, log: Any, quiet: float = 0.2, limit: float = 3.0) -> None:
    """Wait until the partitions' states and the console have not changed for ``quiet`` seconds."""
    end = time.monotonic() + limit
    last, since = None, time.monotonic()
    while time.monotonic() < end:
        now = ([(p["name"], p["state"]) for p in lab.partitions()], log.mark())
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.05)


# --- lessons -----------------------------------------------------------------------------------------
def _lesson_paths(paths: list[str]) -> tuple[list[Path], str]:
    """The lesson files to work on, and where they came from (for "no lessons in ...")."""
    from hyperlab.web.lessons import lesson_files, lessons_dir

    where = ", ".join(paths) if paths else _shown(lessons_dir()) + "/"
    return lesson_files(paths or None), where


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def lessons_check(paths: list[str]) -> int:
    """Print every problem as file:line: message (exit 1), or how many lessons are fine (exit 0)."""
    from hyperlab.web.lessons import load_paths

    files, where = _lesson_paths(paths)
    if not files:
        print(f"no lessons in {where}")
        return 0
    lessons, errors = load_paths(files)
    for e in errors:
        print(f"{_shown(Path(e.path)) if not paths else e.path}:{e.line}: {e.message}")
    bad = len({e.path for e in errors})
    print(f"{len(lessons)} lesson{'s' * (len(lessons) != 1)} OK" + (f", {bad} with problems" if bad else ""),
          file=sys.stderr if errors else sys.stdout)
    return 1 if errors else 0


def lessons_test(args: argparse.Namespace) -> int:
    """Replay every lesson's solution on a real headless lab; one line per step as it finishes, then
    `N passed, M failed` (steps). A lesson that does not load counts as one failure."""
    from hyperlab.web.lessons import load_paths, replay

    files, where = _lesson_paths(args.paths)
    if not files:
        message = f"no lessons in {where}: nothing to test"
        print(json.dumps({"lessons": [], "errors": [], "passed": 0, "failed": 0, "skipped": 0,
                          "message": message}) if args.json else message)
        return 0
    lessons, errors = load_paths(files)
    out = sys.stderr if args.json else sys.stdout
    for e in errors:
        print(f"FAIL {e}", file=out, flush=True)
    results = [replay(lesson, timeout=args.timeout, on_step=lambda r: print(r.line(), file=out, flush=True))
               for lesson in lessons]
    steps = [s for r in results for s in r.steps]
    passed = sum(1 for s in steps if s.passed)
    failed = sum(1 for s in steps if s.passed is False) + len({e.path for e in errors})
    skipped = sum(1 for s in steps if s.passed is None)
    if args.json:
        print(json.dumps({"lessons": [r.to_dict() for r in results],
                          "errors": [{"path": e.path, "line": e.line, "message": e.message} for e in errors],
                          "passed": passed, "failed": failed, "skipped": skipped}, indent=2))
    else:
        print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
