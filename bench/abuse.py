"""Abuse: what one anonymous client can take from the server (issue 8).

1. **Labs an anonymous client can create in 30 s**: cookie-less ``POST /api/labs`` in a loop (each one
   would be a new session and a new lab) against a fresh server; counts the answers (201 created,
   429 too many new sessions from this address, 503 full) and the lab processes running at the end.
   Budget: no more than the per-address session limit (``HYPERLAB_SESSIONS_PER_MINUTE``).
2. **500 concurrent restarts of one's own lab**: one session, 500 threads released together, each
   ``POST /api/labs/<id>/restart``; then the lab processes of the server are counted (children of its
   forkserver, zombies excluded). Budget: exactly one, and no 5xx answer.

Real server (``hyperlab serve``) on 127.0.0.1, fixed counts, every wait bounded. Prints one JSON object.
"""

from __future__ import annotations

import collections
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from bench._common import emit, log
from bench.classroom import Server, _stat, descendants

CREATE_FOR_S = 30.0
RESTARTS = 500
SESSIONS_PER_MINUTE = 30  # the server's default HYPERLAB_SESSIONS_PER_MINUTE


def lab_processes(server: Server) -> list[int]:
    """Live lab processes: the children of the server's forkserver (the worker's other child)."""
    worker = server.worker_pid()
    if worker is None:
        return []
    out = []
    for pid in descendants(worker):
        st = _stat(pid)
        if st is None or st[0] == worker:
            continue  # the forkserver itself (or gone)
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.append(pid)
    return out


def anonymous_labs() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hyperlab-abuse-") as tmp:
        server = Server(Path(tmp))
        try:
            answers: collections.Counter[int] = collections.Counter()
            end = time.monotonic() + CREATE_FOR_S
            while time.monotonic() < end:
                answers[requests.post(server.url + "/api/labs", timeout=60).status_code] += 1
            time.sleep(1)
            labs = len(lab_processes(server))
        finally:
            server.stop()
    return {"seconds": CREATE_FOR_S, "requests": sum(answers.values()),
            "answers": {str(k): v for k, v in sorted(answers.items())}, "labs_created": answers.get(201, 0),
            "lab_processes_after": labs}


def concurrent_restarts() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hyperlab-abuse-") as tmp:
        server = Server(Path(tmp))
        try:
            s = requests.Session()
            lab = s.post(server.url + "/api/labs", timeout=60).json()
            cookie = "; ".join(f"{c.name}={c.value}" for c in s.cookies)
            before = lab_processes(server)
            start = threading.Barrier(RESTARTS)

            def restart(_: int) -> int:
                start.wait()
                try:
                    return requests.post(f"{server.url}/api/labs/{lab['id']}/restart",
                                         headers={"Cookie": cookie}, timeout=120).status_code
                except requests.RequestException:
                    return 0

            t0 = time.monotonic()
            with ThreadPoolExecutor(RESTARTS) as pool:
                codes = collections.Counter(pool.map(restart, range(RESTARTS)))
            took = time.monotonic() - t0
            time.sleep(1)
            after = lab_processes(server)
            alive = s.get(f"{server.url}/api/labs/{lab['id']}", timeout=30).json().get("alive")
        finally:
            server.stop()
    return {"restarts": RESTARTS, "answers": {str(k): v for k, v in sorted(codes.items())},
            "seconds": round(took, 1), "lab_processes_before": len(before), "lab_processes_after": len(after),
            "lab_alive_after": alive}


def main() -> None:
    log("500 concurrent restarts")
    restarts = concurrent_restarts()
    log("anonymous lab creation for 30 s")
    anonymous = anonymous_labs()
    emit("abuse", {
        "anonymous_labs_in_30_s": anonymous,
        "concurrent_restarts": restarts,
        "met": {"restarts_leave_one_process": restarts["lab_processes_after"] == 1
                and not any(k.startswith("5") or k == "0" for k in restarts["answers"]),
                "anonymous_labs_within_the_session_limit": anonymous["labs_created"] <= SESSIONS_PER_MINUTE},
    }, server="hyperlab serve (gunicorn, 1 gevent worker)")


if __name__ == "__main__":
    main()
