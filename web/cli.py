"""The ``hyperlab`` command: ``serve`` the site, or ``run`` a lab headless and type into a partition.

``hyperlab run --type TEXT ...`` boots a fresh lab, waits for the shell prompt of a
partition, types each TEXT + Enter (waiting for the prompt again, or for the
partition to stop or crash), and prints the transcript. It is how tests and
scripts drive real guest code without a browser.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from hyperlab.core.lab import DEFAULT_PARTITIONS

PROMPT_TIMEOUT = 30.0
_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hyperlab", description="A teaching lab: a real hypervisor at work.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the site")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--debug", action="store_true", help="Flask's development server with reloading off")
    serve.add_argument("--threads", type=int, default=256,
                       help="worker threads: each open WebSocket holds one (default 256)")

    run = sub.add_parser("run", help="boot a lab headless, type into a partition, print the transcript")
    run.add_argument("--design", choices=("microkernel", "monolithic"), default="microkernel")
    run.add_argument("--partition", default="child1", help="the partition to type into (default child1)")
    run.add_argument("--no-ic", action="append", default=[], metavar="NAME",
                     help="boot NAME without Integration Services (repeatable)")
    run.add_argument("--data-dir", type=Path, help="keep the lab's disks in DIR")
    run.add_argument("--type", action="append", default=[], metavar="TEXT", dest="texts",
                     help="a line to type, followed by Enter (repeatable)")
    run.add_argument("--timeout", type=float, default=PROMPT_TIMEOUT,
                     help="seconds to wait for each prompt (default 30)")
    run.add_argument("--json", action="store_true", help="print a JSON object instead of the transcript")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return serve(args.host, args.port, args.debug, args.threads)
    return run(args)


# --- serve -------------------------------------------------------------------------------------------
def serve(host: str, port: int, debug: bool, threads: int) -> int:
    from hyperlab.web.app import create_app

    if debug:
        create_app().run(host=host, port=port, debug=True, use_reloader=False, threaded=True)
        return 0
    from gunicorn.app.base import BaseApplication

    class _Server(BaseApplication):
        """gunicorn in-process: one worker (labs live in its memory), threads for WebSockets."""

        def load_config(self) -> None:
            for key, value in {
                "bind": f"{host}:{port}", "workers": 1, "worker_class": "gthread", "threads": threads,
                "timeout": 0, "graceful_timeout": 5, "accesslog": "-", "control_socket_disable": True,
            }.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self) -> Any:
            return create_app()

    print(f"hyperlab: serving on http://{host}:{port}", file=sys.stderr, flush=True)
    _Server().run()
    return 0


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

    settings = _settings(args)
    lab = LabHandle("cli", settings)
    name = args.partition
    prompt = f"{name}$ ".encode()
    try:
        lab.wait_ready()
        boot_ms = _wait_prompt(lab, name, prompt, 0, args.timeout)
        if boot_ms is None:
            print(f"hyperlab run: {name} showed no prompt within {args.timeout:.0f} s", file=sys.stderr)
            return 1
        assert lab.started_at is not None
        boot_ms = (boot_ms - lab.started_at) * 1000
        for text in args.texts:
            mark = len(lab.console_text(name))
            lab.send_console(name, text.encode() + b"\r")
            if _wait_prompt(lab, name, prompt, mark, args.timeout) is None:
                state = lab.partition(name)["state"]
                if state not in ("crashed", "off", "stopping"):
                    print(f"hyperlab run: {name} showed no prompt within {args.timeout:.0f} s after "
                          f"{text!r}", file=sys.stderr)
                    return 1
                break  # the partition stopped or crashed: the transcript says why
        transcript = _clean(lab.console_text(name))
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
            "counters": counters,
        }, indent=2))
    else:
        print(transcript, end="" if transcript.endswith("\n") else "\n")
    return 0


def _wait_prompt(lab: Any, name: str, prompt: bytes, mark: int, timeout: float) -> float | None:
    """Wall time (time.time()) when the prompt appeared after `mark`, or None (timeout, or the partition stopped)."""
    end = time.monotonic() + timeout
    next_state_check = 0.0
    while time.monotonic() < end:
        if prompt in lab.console_text(name)[mark:]:
            return time.time()
        now = time.monotonic()
        if now >= next_state_check:
            next_state_check = now + 0.1
            if not lab.alive or lab.partition(name)["state"] in ("crashed", "off"):
                return None
        time.sleep(0.002)
    return None


def _clean(data: bytes) -> str:
    """The console as text: escape sequences dropped, CRLF as LF."""
    return _ANSI.sub(b"", data).replace(b"\r\n", b"\n").replace(b"\r", b"").decode("utf-8", "replace")


if __name__ == "__main__":
    sys.exit(main())
