"""Two nodes behind HAProxy (deploy/haproxy.cfg) sharing PostgreSQL, on loopback: what the balancer costs a
keystroke, and how long a student of a node that dies waits for a prompt on the other node.

(a) console echo, through the balancer vs direct: two students with their labs on node1, one reaching
    it through HAProxy, the other straight; child1's console over the WebSocket, taking turns key by key: a letter, then a backspace that erases it (echo ``\\b \\b``), 0.05 s apart; send →
    echo received in the client (``perf_counter``). The difference is HAProxy's hop (two loopback
    connections, HTTP tunnel mode).
(b) failover: a student with a console open on node X; node X is killed (SIGKILL to its process group:
    the server and the labs at once). From the kill, the student does what the page does — ask for its
    lab (``POST /api/labs``) through HAProxy, retrying on an error — then opens the root's console and
    waits for ``root$ ``. Measured: kill → every process of the node gone (the student starts asking
    then), kill → the lab answered by the other node, kill → prompt. Each round starts fresh nodes,
    balancer and database.

``python -m bench.cluster`` (``make bench`` runs it with the others); about a minute.
"""

from __future__ import annotations

import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
import websocket

from bench._common import emit, log

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from cluster import NODE_COOKIE, Balancer, Node  # tests/ holds the loopback cluster the test runs
from pgserver import PostgresServer

KEYS = 200                # keystrokes per path (half letters, half backspaces)
GAP_S = 0.05
ROUNDS = 5                # failover rounds
PROMPT_TIMEOUT_S = 60.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def dist(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "p50": round(pct(values, 0.5), 2), "p90": round(pct(values, 0.9), 2),
            "p99": round(pct(values, 0.99), 2), "max": round(max(values), 2),
            "mean": round(statistics.fmean(values), 2)}


def console(ws_url: str, s: requests.Session, lab_id: str, name: str) -> websocket.WebSocket:
    cookie = "; ".join(f"{c.name}={c.value}" for c in s.cookies)
    ws = websocket.create_connection(f"{ws_url}/ws/labs/{lab_id}/partitions/{name}/console", cookie=cookie,
                                     timeout=PROMPT_TIMEOUT_S)
    ws.send_binary(b"\r")
    got = b""
    while f"{name}$ ".encode() not in got:
        got += ws.recv_data()[1]
    return ws


def key(ws: websocket.WebSocket, data: bytes, echo: bytes) -> float:
    t0 = time.perf_counter()
    ws.send_binary(data)
    got = b""
    while echo not in got:
        got += ws.recv_data()[1]
    return (time.perf_counter() - t0) * 1000


def student_on(node: str, base_url: str) -> requests.Session:
    """A session whose lab is on ``node`` (the balancer alternates new students over the nodes)."""
    while True:
        s = requests.Session()
        s.get(base_url + "/", timeout=30).raise_for_status()
        if s.cookies.get(NODE_COOKIE) in (node, None):  # None: straight to a node, no balancer
            return s


def echo_through_and_direct(pg: PostgresServer, tmp: Path) -> dict[str, Any]:
    url = pg.new_database()
    with Node("node1", tmp / "echo-node1", url) as node1, Node("node2", tmp / "echo-node2", url) as node2, \
            Balancer(tmp, [node1, node2]) as lb:
        # Two students with their labs on node1: one through the balancer, one straight to node1.
        paths = {}
        for name, base, ws_base in (("balancer", lb.url, lb.ws_url), ("direct", node1.url, node1.url.replace("http", "ws"))):
            s = student_on("node1", base)
            lab = s.post(base + "/api/labs", timeout=60).json()
            paths[name] = console(ws_base, s, lab["id"], "child1")
        times: dict[str, list[float]] = {name: [] for name in paths}
        for i in range(KEYS):
            for name, ws in paths.items():
                time.sleep(GAP_S)
                letter = chr(ord("a") + (i // 2) % 26)
                times[name].append(key(ws, letter.encode(), letter.encode()) if i % 2 == 0
                                   else key(ws, b"\x7f", b"\b \b"))
        for ws in paths.values():
            ws.close()
    out = {name: dist(values) for name, values in times.items()}
    out["balancer_adds_ms"] = {q: round(out["balancer"][q] - out["direct"][q], 2) for q in ("p50", "p99")}
    return out


def failover_round(pg: PostgresServer, tmp: Path, n: int) -> dict[str, float]:
    url = pg.new_database()
    with Node("node1", tmp / f"f{n}-node1", url) as node1, Node("node2", tmp / f"f{n}-node2", url) as node2, \
            Balancer(tmp, [node1, node2]) as lb:
        nodes = {"node1": node1, "node2": node2}
        s = requests.Session()
        s.get(lb.url + "/", timeout=30).raise_for_status()
        lab = s.post(lb.url + "/api/labs", timeout=60).json()
        ws = console(lb.ws_url, s, lab["id"], "root")
        dead = s.cookies.get(NODE_COOKIE)
        killed = time.perf_counter()
        nodes[dead].kill()
        gone = time.perf_counter()
        ws.close()
        s.close()  # as a browser would, on fresh connections
        while True:
            try:
                answer = s.post(lb.url + "/api/labs", timeout=30)
                if answer.ok:
                    break
            except requests.ConnectionError:
                pass
            if time.perf_counter() - killed > PROMPT_TIMEOUT_S:
                raise RuntimeError("the lab never came back")
            time.sleep(0.05)
        answered = time.perf_counter()
        assert answer.json()["id"] == lab["id"] and s.cookies.get(NODE_COOKIE) != dead
        console(lb.ws_url, s, lab["id"], "root").close()
        prompt = time.perf_counter()
    return {"node_gone_s": gone - killed, "lab_answered_s": answered - killed, "prompt_s": prompt - killed}


def main() -> None:
    with PostgresServer() as pg, tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp_dir:
        tmp = Path(tmp_dir)
        log("cluster: echo through the balancer and direct ...")
        echo = echo_through_and_direct(pg, tmp)
        rounds = []
        for n in range(ROUNDS):
            rounds.append(failover_round(pg, tmp, n))
            log(f"cluster: failover round {n + 1}: lab answered after {rounds[-1]['lab_answered_s']:.2f} s, "
                f"prompt after {rounds[-1]['prompt_s']:.2f} s")
    emit("cluster", {
        "echo_ms": {**echo, "unit": "ms", "clock": "host wall (perf_counter) in the client: send -> echo received"},
        "failover": {
            "unit": "s", "clock": "host wall (perf_counter): SIGKILL of the node -> ...",
            "node_gone_s": dist([r["node_gone_s"] for r in rounds]),
            "lab_answered_s": dist([r["lab_answered_s"] for r in rounds]),
            "prompt_s": dist([r["prompt_s"] for r in rounds]),
            "samples": [{k: round(v, 3) for k, v in r.items()} for r in rounds],
        },
    })


if __name__ == "__main__":
    main()
