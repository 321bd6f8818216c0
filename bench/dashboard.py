"""The instructor's dashboard with 100 students: update latency and the web process's CPU per update.

Starts the production server (``hyperlab serve``: gunicorn, one worker) on 127.0.0.1 in a temporary data
directory with an instructor secret, signs in, makes a class of the first two shipped lessons, and opens
three live views on it (two dashboards and a projector: three SSE streams). Then 100 simulated students —
real sessions over HTTP, each its own cookie; ``LIVE_LABS`` of them with a real lab process, so their rows
carry the lab's state and console thumbnail — produce real progress events through the public API:

1. **join**: each student joins with the code, one after another; latency = from sending the request to
   the first dashboard frame that has the student's row.
2. **progress**: each student goes to step 1 of the first lesson (``POST /api/lessons/<id>/goto``): the
   heat map's cell turns "working"; same latency.
3. **idle**: nothing happens for ``IDLE_S``: the classroom thread still rebuilds the view every tick (for
   other nodes' writes and stuck timers) and sends nothing when nothing changed — its CPU per rebuild.
4. **burst**: all 100 students go to the second lesson's first step at once (16 client threads): time
   until every dashboard shows every one of them.

CPU: utime+stime of the web worker process (the server's processes minus the lab processes, from /proc)
over each phase, divided by the frames each dashboard received (an update = one new view pushed). That
includes the HTTP handling of the events themselves. Prints JSON (``make bench``); figures go to
docs/performance.md ("Instructor dashboard").
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from bench._common import emit, log, summary

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from liveserver import LiveServer

STUDENTS = 100
LIVE_LABS = 10
IDLE_S = 15.0
SECRET = "bench instructor secret"
WAIT_S = 60.0
TICKS = os.sysconf("SC_CLK_TCK")


class Viewer:
    """One SSE stream of the class's view: every frame with its arrival time."""

    def __init__(self, s: requests.Session, url: str) -> None:
        self.response = s.get(url, stream=True, timeout=(5, 120))
        self.response.raise_for_status()
        self.frames: list[tuple[float, dict[str, Any], int]] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        data: list[str] = []
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "" and data:
                    text = "\n".join(data)
                    data = []
                    frame = json.loads(text)
                    with self.cond:
                        self.frames.append((time.perf_counter(), frame, len(text)))
                        self.cond.notify_all()
        except (requests.RequestException, AttributeError, ValueError):
            return

    def wait_for(self, pred: Any, after: float) -> float:
        """Arrival time of the first frame at or after ``after`` (perf_counter) that satisfies ``pred``."""
        deadline = time.monotonic() + WAIT_S
        with self.cond:
            while True:
                for at, frame, _ in reversed(self.frames):
                    if at >= after and pred(frame):
                        return at
                    if at < after:
                        break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("the dashboard never showed the change")
                self.cond.wait(left)

    def count(self) -> int:
        with self.cond:
            return len(self.frames)


def web_cpu(server_pid: int) -> float:
    """CPU seconds of the server's own processes (gunicorn master and worker, the forkserver), not the labs'."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry))
            except OSError:
                continue
    total = 0.0
    for pid in [server_pid, *children.get(server_pid, [])]:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if b"forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes():
            continue  # its children are the labs; it only forks
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def latency(values: list[float]) -> dict[str, Any]:
    stats = summary(values, 1)
    del stats["samples"]
    return {**stats, "p99": round(sorted(values)[max(0, round(0.99 * len(values)) - 1)], 1)}


def row_of(frame: dict[str, Any], lab: str) -> dict[str, Any] | None:
    return next((r for r in frame["students"] if r["student"] == lab), None)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        env = {"HYPERLAB_INSTRUCTOR_SECRET": SECRET, "HYPERLAB_SESSIONS_PER_MINUTE": "10000",
               "HYPERLAB_MAX_LABS": str(LIVE_LABS + 4)}
        with LiveServer(Path(tmp), env=env) as server:
            assert server._proc is not None
            pid = server._proc.pid
            teacher = requests.Session()
            teacher.get(server.url + "/", timeout=10)
            teacher.post(server.url + "/api/instructor/sign-in", json={"secret": SECRET}, timeout=10).raise_for_status()
            lessons = [x["id"] for x in teacher.get(server.url + "/api/lessons", timeout=30).json()["lessons"]][:2]
            klass = teacher.post(server.url + "/api/classes", json={"name": "Bench", "lessons": lessons},
                                 timeout=10).json()
            stream = server.url + f"/api/classes/{klass['id']}/dashboard/events"
            viewers = [Viewer(teacher, stream) for _ in range(3)]
            dash = viewers[0]

            students: list[tuple[requests.Session, str]] = []
            for i in range(STUDENTS):
                s = requests.Session()
                if i < LIVE_LABS:
                    lab = s.post(server.url + "/api/labs", timeout=60).json()["id"]
                else:
                    s.get(server.url + "/", timeout=10)
                    lab = s.get(server.url + "/api/session", timeout=10).json()["lab_id"]
                students.append((s, lab))
            log(f"{STUDENTS} sessions, {LIVE_LABS} live labs")
            time.sleep(3)  # the labs boot

            def measured(phase: str, act: Any, pred: Any) -> tuple[list[float], float, int]:
                latencies = []
                cpu0, frames0 = web_cpu(pid), dash.count()
                for i, (s, lab) in enumerate(students):
                    t0 = time.perf_counter()
                    act(i, s)
                    latencies.append((dash.wait_for(lambda f, lab=lab: pred(f, lab), t0) - t0) * 1000)
                cpu = web_cpu(pid) - cpu0
                frames = dash.count() - frames0
                log(f"{phase}: median {sorted(latencies)[len(latencies) // 2]:.1f} ms, {frames} frames, cpu {cpu:.2f} s")
                return latencies, cpu, frames

            def join(i: int, s: requests.Session) -> None:
                s.post(server.url + "/api/classes/join", json={"code": klass["join_code"], "display_name": f"Student {i:03d}"},
                       timeout=30).raise_for_status()

            def goto(lesson: str) -> Any:
                def act(i: int, s: requests.Session) -> None:
                    s.post(server.url + f"/api/lessons/{lesson}/goto", json={"index": 0}, timeout=30).raise_for_status()
                return act

            join_lat, join_cpu, join_frames = measured("join", join, lambda f, lab: row_of(f, lab) is not None)
            prog_lat, prog_cpu, prog_frames = measured(
                "progress", goto(lessons[0]),
                lambda f, lab: (row_of(f, lab) or {}).get("current", {}).get(lessons[0]) == 0)

            cpu0, frames0 = web_cpu(pid), dash.count()
            time.sleep(IDLE_S)
            idle_cpu, idle_frames = web_cpu(pid) - cpu0, dash.count() - frames0

            cpu0, frames0 = web_cpu(pid), dash.count()
            t0 = time.perf_counter()
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda pair: goto(lessons[1])(0, pair[0]), students))
            sent = time.perf_counter()
            done = dash.wait_for(lambda f: all(r["current"].get(lessons[1]) == 0 for r in f["students"]), t0)
            burst_cpu, burst_frames = web_cpu(pid) - cpu0, dash.count() - frames0
            last_view = dash.frames[-1]
            thumbs = sum(1 for r in last_view[1]["students"] if r["lab"]["thumbnail"])

    emit("dashboard", {
        "students": STUDENTS, "live_labs": LIVE_LABS, "viewers": len(viewers), "thumbnails_in_view": thumbs,
        "steps_in_view": sum(len(x["steps"]) for x in last_view[1]["lessons"]),
        "frame_bytes": last_view[2],
        "join_latency_ms": latency(join_lat),
        "progress_latency_ms": latency(prog_lat),
        "web_cpu_ms_per_update": {
            "join": round(join_cpu * 1000 / max(1, join_frames), 1),
            "progress": round(prog_cpu * 1000 / max(1, prog_frames), 1),
            "frames": {"join": join_frames, "progress": prog_frames},
            "note": "web worker CPU over the phase (the event's own HTTP request included) / frames pushed",
        },
        "idle": {"seconds": IDLE_S, "frames": idle_frames, "web_cpu_ms_per_s": round(idle_cpu * 1000 / IDLE_S, 1)},
        "burst": {"events": STUDENTS, "send_s": round(sent - t0, 2), "all_shown_s": round(done - t0, 2),
                  "frames": burst_frames, "web_cpu_s": round(burst_cpu, 2)},
    })


if __name__ == "__main__":
    main()
