"""The hyperlab client in CPython against a real server (gunicorn, as `hyperlab serve` runs it).

The same file runs in the browser under Pyodide: tests/test_browser_lessons.py runs it in a notebook
cell. Here: a script gets its own session and lab, reads counters, runs commands in the guest's shell,
acts on partitions, changes settings, joins a browser session's lab by its cookie; plots are SVG.
"""

from __future__ import annotations

import ast
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from liveserver import LiveServer, free_port

from hyperlab.web import client as client_module
from hyperlab.web.client import HyperlabError, Lab, Svg, plot, table

SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("client-server")) as live:
        yield live


@pytest.fixture(scope="module")
def lab(server: LiveServer) -> Lab:
    lab = Lab.current(server.url)
    assert lab.wait_prompt("child1", timeout=30)
    return lab


def test_the_client_needs_only_the_standard_library() -> None:
    tree = ast.parse(Path(client_module.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add((node.module or "").split(".")[0])
    imported -= {"__future__", "js"}  # js: Pyodide's bridge, imported only in the browser
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)


def test_current_lab_is_the_sessions_lab(server: LiveServer, lab: Lab) -> None:
    again = Lab.current(server.url)
    assert again.id != lab.id  # a new Lab object without a session is a new session: its own lab
    same = Lab(server.url, lab.id, session=lab._t.cookies["hyperlab_session"])
    assert same.id == lab.id and same.describe()["id"] == lab.id
    assert [p["name"] for p in same.partitions()] == ["root", "child1", "child2"]
    # another session's lab is answered as unknown
    with pytest.raises(HyperlabError) as info:
        Lab(server.url, lab.id).describe()
    assert info.value.status == 404


def test_read_partitions_and_counters(lab: Lab) -> None:
    names = [p["name"] for p in lab.partitions()]
    assert names == ["root", "child1", "child2"]
    assert lab.partition("child2")["role"] == "child"
    assert lab.state("child1") in ("running", "starting")
    counters = lab.counters()
    assert counters and all(isinstance(v, (int, float)) for v in counters.values())
    assert set(lab.counters("child1.")) <= {k for k in counters if k.startswith("child1.")}
    assert lab.counter("child1.no.such.counter") == 0
    with pytest.raises(HyperlabError) as info:
        lab.partition("child9")
    assert info.value.status == 404 and "child9" in info.value.message


def test_run_a_command_and_measure_it(lab: Lab) -> None:
    before = lab.counter("child1.syscalls")
    with lab.measure() as m:
        output = lab.run("child1", "syscalls 200")
    assert "200 system calls" in output
    assert m.delta("child1.syscalls") >= 200
    assert lab.counter("child1.syscalls") - before >= 200
    assert "child1.syscalls" in m.deltas("child1.")
    assert "syscalls 200" in lab.console("child1")
    lab.type("child1", "echo typed-not-waited")
    assert lab.wait_prompt("child1")
    assert "typed-not-waited" in lab.console("child1")


def test_actions_and_settings(lab: Lab) -> None:
    assert lab.pause("child2")["state"] == "paused"
    with pytest.raises(HyperlabError) as info:
        lab.pause("child2")
    assert info.value.status == 409
    assert lab.resume("child2")["state"] == "running"
    with pytest.raises(HyperlabError) as info:
        lab.action("child2", "explode")
    assert info.value.status == 400
    assert lab.settings("child2", memory_mb=32)["memory_mb"] == 32
    with pytest.raises(HyperlabError) as info:
        lab.settings("child2", cpus=2)
    assert info.value.status == 400 and "cpus" in info.value.message
    lab.turn_off("child2")
    assert lab.wait_state("child2", "off", timeout=20) == "off"
    lab.start("child2")
    assert lab.wait_state("child2", "running", timeout=30) == "running"
    assert lab.wait_prompt("child2", timeout=30)


def test_unreachable_server() -> None:
    with pytest.raises(HyperlabError) as info:
        Lab.current(f"http://127.0.0.1:{free_port()}")
    assert info.value.status == 0 and "could not be reached" in str(info.value)


def test_plot_is_well_formed_svg() -> None:
    svg = plot([1, 2, 4, 8], {"child1": [40, 80, 160, 320], "child2": [2, 2, 3, 4]},
               title="Exits per write", xlabel="sectors written", ylabel="exits")
    assert isinstance(svg, Svg) and svg._repr_svg_() == str(svg)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg" and root.get("role") == "img"
    assert root.find(f"{SVG_NS}title").text == "Exits per write"
    assert "child2 — 1: 2" in root.find(f"{SVG_NS}desc").text  # the data in words, for screen readers
    assert len(root.findall(f"{SVG_NS}polyline")) == 2
    texts = [t.text for t in root.iter(f"{SVG_NS}text")]
    assert "sectors written" in texts and "exits" in texts and "child1" in texts

    bars = plot(["emulated", "VMBus"], {"exits": [1200, 3]}, kind="bar", title="<b> & co")
    root = ET.fromstring(bars)  # titles are escaped
    assert root.find(f"{SVG_NS}title").text == "<b> & co"
    assert len([r for r in root.iter(f"{SVG_NS}rect") if r.find(f"{SVG_NS}title") is not None]) == 2
    single = plot([3], [5.5])
    ET.fromstring(single)
    with pytest.raises(ValueError):
        plot([1, 2], {"a": [1]})
    with pytest.raises(ValueError):
        plot([1], {"a": [1]}, kind="pie")


def test_table_for_printing() -> None:
    text = table({"child1.syscalls": 1204, "child2.exits.io_port": 88412})
    lines = text.splitlines()
    assert lines[0].split() == ["name", "value"]
    assert lines[2].startswith("child1.syscalls") and lines[2].endswith("1,204")


def test_run_that_never_prompts_raises(lab: Lab) -> None:
    with pytest.raises(HyperlabError) as info:
        lab.run("child1", "spin 1000", timeout=0.5)
    assert info.value.status == 408 and "no prompt" in info.value.message
    lab.type("child1", "\x03", enter=False)  # Ctrl-C stops it
    assert lab.wait_prompt("child1", timeout=30)


def test_plot_log_scale_keeps_small_and_large_counts_apart() -> None:
    """Issue 9: 3 and 2,600 on one linear 0-3,000 axis overlap near zero; a log axis separates them."""
    svg = plot([1, 8], {"big": [300, 2600], "small": [2, 3], "zero": [0, 0]}, yscale="log", ylabel="exits")
    ns = {"s": "http://www.w3.org/2000/svg"}
    lines = ET.fromstring(svg).findall("s:polyline", ns)
    first_y = [float(line.get("points", "").split()[0].split(",")[1]) for line in lines]  # big, small, zero
    height = 360 - 16 - 52  # the plot area of a chart without a title
    assert "exits (log scale)" in svg
    for tick in (">0<", ">1<", ">10<", ">100<", ">1,000<", ">10,000<"):
        assert tick in svg
    assert first_y[2] - first_y[1] > 0.1 * height  # 2 is well clear of 0
    assert first_y[1] - first_y[0] > 0.3 * height  # and of 300
    with pytest.raises(ValueError):
        plot([1], [-1], yscale="log")
