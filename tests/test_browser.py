"""The manager page in a real browser (Playwright driving Debian's Chromium) against a real server.

Each test gets a fresh browser context, i.e. a fresh session and so a lab of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from liveserver import InProcessServer, LiveServer
from playwright.sync_api import Locator, Page, expect

from hyperlab.web.app import create_app

BOOT_TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("browser-server")) as live:
        yield live


@pytest.fixture
def manager(page: Page, server: LiveServer) -> Iterator[Page]:
    """The manager page, loaded, with page errors collected (and asserted absent at the end)."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + "/")
    expect(page.locator("#partitions tbody tr")).to_have_count(3, timeout=BOOT_TIMEOUT_MS)
    yield page
    assert errors == [], errors


def row(page: Page, name: str) -> Locator:
    return page.locator(f'#partitions tbody tr[data-partition="{name}"]')


def console_text(page: Page, name: str) -> str:
    return page.evaluate("(name) => window.__hyperlab.consoleText(name)", name)


def wait_console(page: Page, name: str, needle: str, timeout_ms: int = BOOT_TIMEOUT_MS) -> None:
    page.wait_for_function(
        "([name, needle]) => window.__hyperlab.consoleText(name).includes(needle)",
        arg=[name, needle], timeout=timeout_ms,
    )


def connect(page: Page, name: str) -> None:
    row(page, name).get_by_role("button", name=f"Connect to the console of {name}").click()
    wait_console(page, name, f"{name}$ ")
    page.locator(f'.console-pane[data-partition="{name}"] .xterm').click()


def test_page_lists_the_partitions(manager: Page) -> None:
    for name, role in (("root", "root"), ("child1", "child"), ("child2", "child")):
        expect(row(manager, name).locator("td.name")).to_have_text(name)
        expect(row(manager, name).locator("td.role")).to_have_text(role)
        expect(row(manager, name).locator(".state")).to_have_text("running", timeout=BOOT_TIMEOUT_MS)
    expect(manager.locator("#link-state")).to_have_text("live")
    # buttons follow the partition's allowed actions
    expect(row(manager, "child1").get_by_role("button", name="Pause child1")).to_be_enabled()
    expect(row(manager, "child1").get_by_role("button", name="Start child1")).to_be_disabled()
    # the counters panel shows the selected partition's live counters
    expect(manager.locator("#counters tbody tr").first).to_be_visible()


def test_console_shows_prompt_and_help(manager: Page) -> None:
    connect(manager, "child1")
    # rendered by xterm.js, not only held in its buffer
    expect(manager.locator('.console-pane[data-partition="child1"] .xterm-rows')).to_contain_text("child1$")
    manager.keyboard.type("help")
    manager.keyboard.press("Enter")
    wait_console(manager, "child1", "crash", timeout_ms=10_000)
    text = console_text(manager, "child1")
    answer = text[text.rfind("$ help"):]
    for command in ("ver", "echo", "uptime", "syscalls", "spin", "crash"):
        assert command in answer, answer


def test_two_consoles_at_once(manager: Page) -> None:
    connect(manager, "child1")
    connect(manager, "child2")
    manager.keyboard.type("echo from-two")
    manager.keyboard.press("Enter")
    wait_console(manager, "child2", "from-two", timeout_ms=10_000)
    expect(manager.get_by_role("tab")).to_have_count(2)
    assert "from-two" not in console_text(manager, "child1")


def test_crash_kernel_marks_only_that_partition_crashed(manager: Page) -> None:
    connect(manager, "child1")
    manager.keyboard.type("crash kernel")
    manager.keyboard.press("Enter")
    expect(row(manager, "child1").locator(".state")).to_have_text("crashed", timeout=15_000)
    expect(row(manager, "child1").locator(".reason")).not_to_be_empty()
    expect(row(manager, "child2").locator(".state")).to_have_text("running")
    expect(row(manager, "root").locator(".state")).to_have_text("running")
    # Reset is offered for the crashed partition and brings it back to a prompt: a fresh boot banner,
    # then the prompt after it (typing into a kernel that is still booting would be lost, as on hardware).
    boots = console_text(manager, "child1").count("on partition child1")
    row(manager, "child1").get_by_role("button", name="Reset child1").click()
    expect(row(manager, "child1").locator(".state")).to_have_text("running", timeout=BOOT_TIMEOUT_MS)
    manager.wait_for_function(
        """([boots]) => {
             const parts = window.__hyperlab.consoleText('child1').split('on partition child1');
             return parts.length > boots + 1 && parts[parts.length - 1].includes('child1$ ');
           }""", arg=[boots], timeout=BOOT_TIMEOUT_MS)


def test_large_paste_keeps_the_console_open(manager: Page) -> None:
    """A paste bigger than the server's 4 KiB message cap goes out in chunks, not as one refused frame."""
    connect(manager, "child1")
    manager.evaluate("() => window.__hyperlab.consoles.terminal('child1').paste('echo ' + 'a'.repeat(5000))")
    manager.keyboard.press("Enter")
    # Nothing is lost: what does not fit in the guest's buffer waits in its UART.
    manager.keyboard.type("echo after-paste")
    manager.keyboard.press("Enter")
    manager.wait_for_function(  # typed once, then printed by echo on its own line
        "() => window.__hyperlab.consoleText('child1').includes('\\nafter-paste')", timeout=10_000)
    assert "\nafter-paste" in console_text(manager, "child1"), console_text(manager, "child1")[-500:]
    status = manager.locator('.console-pane[data-partition="child1"] .console-status')
    expect(status).to_have_text(re.compile(r"^connected to child1"))


def test_dead_lab_shows_lab_stopped_and_restart_brings_it_back(page: Page, tmp_path: Path) -> None:
    app = create_app({"HYPERLAB_DATA_DIR": tmp_path, "HYPERLAB_SECRET_KEY": "test"})
    with InProcessServer(app) as server:
        page.goto(server.url + "/")
        expect(row(page, "child1").locator(".state")).to_have_text("running", timeout=BOOT_TIMEOUT_MS)
        connect(page, "child1")
        lab_id = page.evaluate("() => window.__hyperlab.labId")
        app.extensions["hyperlab.labs"].get(lab_id).process.kill()

        banner = page.locator("#stopped-banner")
        expect(banner).to_be_visible(timeout=10_000)
        expect(banner).to_contain_text("Lab stopped")
        for name in ("root", "child1", "child2"):
            expect(row(page, name).locator(".state")).to_have_text("lab stopped")
            expect(row(page, name).get_by_role("button", name=f"Reset {name}")).to_be_disabled()
        expect(page.locator('.console-pane[data-partition="child1"] .console-status')).to_contain_text(
            "lab stopped")

        banner.get_by_role("button", name="Restart lab").click()
        expect(banner).to_be_hidden(timeout=BOOT_TIMEOUT_MS)
        for name in ("root", "child1", "child2"):
            expect(row(page, name).locator(".state")).to_have_text("running", timeout=BOOT_TIMEOUT_MS)
        # the open console reconnected to the fresh lab and answers
        status = page.locator('.console-pane[data-partition="child1"] .console-status')
        expect(status).to_have_text(re.compile(r"^connected to child1"), timeout=BOOT_TIMEOUT_MS)
        wait_console(page, "child1", "child1$ ")
        page.locator('.console-pane[data-partition="child1"] .xterm').click()
        page.keyboard.type("echo fresh-lab")
        page.keyboard.press("Enter")
        wait_console(page, "child1", "\nfresh-lab", timeout_ms=10_000)


# --- settings, shut down, heartbeat, disk download, I/O panel ---------------------------------------------

def lab_partition(page: Page, name: str) -> dict:
    """The partition as the REST API describes it, fetched by the page (its session, its lab)."""
    return page.evaluate(
        """async (name) => {
             const r = await fetch(`/api/labs/${window.__hyperlab.labId}/partitions/${name}`);
             return r.json();
           }""", name)


def io_cell(page: Page, row_id: str, side: str, col: str = "count") -> Locator:
    return page.locator(f'#io tr[data-row="{row_id}"] td[data-side="{side}"][data-col="{col}"]')


def io_number(page: Page, row_id: str, side: str, col: str = "count") -> float | None:
    text = io_cell(page, row_id, side, col).inner_text().replace(",", "").strip()
    return None if text in ("", "—") else float(text)


def test_settings_dialog_changes_integration_services(manager: Page) -> None:
    expect(row(manager, "child2").locator(".state")).to_have_text("running", timeout=BOOT_TIMEOUT_MS)
    assert lab_partition(manager, "child2")["integration_services"] is False
    opener = row(manager, "child2").get_by_role("button", name="Settings of child2")
    opener.click()
    dialog = manager.get_by_role("dialog", name="Settings of child2")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("take effect at the next start")
    memory = dialog.get_by_label("Memory (MiB)")
    expect(memory).to_be_focused()
    expect(memory).to_have_value(str(lab_partition(manager, "child2")["memory_mb"]))
    checkbox = dialog.get_by_label("Integration Services")
    expect(checkbox).not_to_be_checked()

    # Escape cancels: nothing saved, focus back on the button that opened the dialog
    checkbox.check()
    manager.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(opener).to_be_focused()
    assert lab_partition(manager, "child2")["integration_services"] is False

    # a bad memory size is refused with a message, nothing saved
    opener.click()
    expect(checkbox).not_to_be_checked()  # the form starts from the partition's settings again
    memory.fill("33")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_visible()
    assert lab_partition(manager, "child2")["memory_mb"] != 33

    memory.fill("32")
    checkbox.check()
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(manager.locator("#status")).to_contain_text("take effect at the next start")
    described = lab_partition(manager, "child2")
    assert described["integration_services"] is True and described["memory_mb"] == 32
    assert described["state"] == "running"  # still the boot it had
    expect(row(manager, "child2").locator(".pending")).to_have_text("new settings apply at the next start")
    shut_down = row(manager, "child2").get_by_role("button", name="Shut down child2")
    expect(shut_down).to_be_disabled()
    expect(shut_down).to_have_attribute("aria-description", re.compile("next start"))

    # the root has memory but no Integration Services setting
    row(manager, "root").get_by_role("button", name="Settings of root").click()
    root_dialog = manager.get_by_role("dialog", name="Settings of root")
    expect(root_dialog.get_by_label("Integration Services")).to_be_hidden()
    expect(root_dialog).to_contain_text("hosts the Integration Services")
    root_dialog.get_by_role("button", name="Cancel").click()
    expect(root_dialog).to_be_hidden()

    # Reset boots child2 with its new settings: the note goes away and child2 is enlightened now, as
    # inserting the Integration Services disk and rebooting does on Hyper-V
    row(manager, "child2").get_by_role("button", name="Reset child2").click()
    expect(row(manager, "child2").locator(".pending")).to_have_text("", timeout=BOOT_TIMEOUT_MS)
    expect(row(manager, "child2").locator(".state")).to_have_text("running", timeout=BOOT_TIMEOUT_MS)
    expect(row(manager, "child2").locator(".hb")).to_have_text("ok", timeout=BOOT_TIMEOUT_MS)
    expect(shut_down).to_be_enabled(timeout=BOOT_TIMEOUT_MS)
    expect(io_cell(manager, "vmbus.packets_out", "right")).to_have_text(re.compile(r"^[1-9][\d,]*$"))


def test_shut_down_is_greyed_out_with_the_reason(manager: Page) -> None:
    expect(row(manager, "child2").locator(".state")).to_have_text("running", timeout=BOOT_TIMEOUT_MS)
    shut_down = row(manager, "child2").get_by_role("button", name="Shut down child2")
    expect(shut_down).to_be_disabled()
    reason = "needs Integration Services: install them in Settings and restart"
    expect(shut_down).to_have_attribute("aria-description", reason)
    expect(shut_down).to_have_attribute("title", reason)
    root_button = row(manager, "root").get_by_role("button", name="Shut down root")
    expect(root_button).to_be_disabled()
    expect(root_button).to_have_attribute("title", re.compile("root"))


def test_heartbeat_and_clean_shut_down_of_the_enlightened_child(manager: Page) -> None:
    """child1 has Integration Services: its heartbeat shows ok and Shut down turns it off cleanly."""
    heartbeat = row(manager, "child1").locator(".hb")
    expect(heartbeat).to_have_text("ok", timeout=BOOT_TIMEOUT_MS)
    expect(row(manager, "child2").locator(".hb")).to_have_text("none")
    expect(row(manager, "child2").locator("td.heartbeat")).to_have_attribute("title", re.compile("Integration Services"))
    expect(row(manager, "root").locator(".hb")).to_have_text("—")
    shut_down = row(manager, "child1").get_by_role("button", name="Shut down child1")
    expect(shut_down).to_be_enabled(timeout=BOOT_TIMEOUT_MS)
    expect(shut_down).not_to_have_attribute("aria-description", re.compile("."))
    shut_down.click()
    expect(row(manager, "child1").locator(".state")).to_have_text("off", timeout=BOOT_TIMEOUT_MS)
    expect(row(manager, "child1").locator(".hb")).to_have_text("none")
    expect(row(manager, "child1").get_by_role("button", name="Shut down child1")).to_have_attribute(
        "aria-description", "child1 is off")


def test_download_disk_only_when_off(manager: Page, tmp_path: Path) -> None:
    expect(row(manager, "child2").locator(".state")).to_have_text("running", timeout=BOOT_TIMEOUT_MS)
    download = row(manager, "child2").get_by_role("button", name="Download disk (.vhd) of child2")
    expect(download).to_be_disabled()
    expect(download).to_have_attribute("title", "turn child2 off first: a disk in use may be mid-write")
    expect(download).to_have_attribute("aria-description", re.compile("mid-write"))
    expect(row(manager, "root").get_by_role("button", name=re.compile("Download"))).to_have_count(0)

    row(manager, "child2").get_by_role("button", name="Turn off child2").click()
    expect(row(manager, "child2").locator(".state")).to_have_text("off", timeout=BOOT_TIMEOUT_MS)
    expect(download).to_be_enabled()
    expect(download).not_to_have_attribute("title", re.compile("."))
    lab_id = manager.evaluate("() => window.__hyperlab.labId")
    with manager.expect_download() as info:
        download.click()
    assert info.value.suggested_filename == f"{lab_id}-child2.vhd"
    saved = tmp_path / "child2.vhd"
    info.value.save_as(saved)
    data = saved.read_bytes()
    assert len(data) > 512 and data[-512:].startswith(b"conectix")

    row(manager, "child2").get_by_role("button", name="Start child2").click()
    expect(row(manager, "child2").locator(".state")).to_have_text("running", timeout=BOOT_TIMEOUT_MS)
    expect(download).to_be_disabled()


def test_io_panel_compares_child1_and_child2_live(manager: Page) -> None:
    panel = manager.locator("section.io")
    expect(panel.locator('thead th.io-side[data-side="left"] .io-name')).to_have_text("child1")
    expect(panel.locator('thead th.io-side[data-side="right"] .io-name')).to_have_text("child2")
    expect(panel.get_by_label("Compare")).to_have_value("child1")
    expect(panel.get_by_label("with")).to_have_value("child2")
    for section in ("Exits to the hypervisor", "Served by the root: worker process and VSPs", "VMBus", "Disk",
                    "Transitions"):
        expect(panel.get_by_role("rowheader", name=section, exact=True)
               .or_(panel.get_by_role("columnheader", name=section, exact=True))).to_have_count(1)
    expect(panel.get_by_text("modelled (real hardware)").first).to_be_visible()
    expect(panel).to_contain_text("count")
    expect(io_cell(manager, "exits.io_port", "right")).to_have_text(re.compile(r"^[\d,]+$"), timeout=BOOT_TIMEOUT_MS)

    # typing into child2's console (the emulated UART) moves child2's port-I/O exits and worker round trips
    connect(manager, "child2")
    exits_before = io_number(manager, "exits.io_port", "right")
    served_before = io_number(manager, "intercepts.served_by_root", "right")
    manager.keyboard.type("echo io-panel")
    manager.keyboard.press("Enter")
    wait_console(manager, "child2", "\nio-panel", timeout_ms=10_000)
    manager.wait_for_function(
        """([before]) => {
             const cell = document.querySelector('#io tr[data-row="exits.io_port"] td[data-side="right"][data-col="count"]');
             return Number(cell.textContent.replace(/,/g, '')) > before;
           }""", arg=[exits_before], timeout=10_000)
    after = io_number(manager, "intercepts.served_by_root", "right")
    assert served_before is not None and after is not None and after > served_before
    # a rate was computed in the browser: a number per second, not the placeholder
    expect(io_cell(manager, "exits.io_port", "right", "rate")).to_have_text(re.compile(r"^[\d,.]+$"))

    # typing into child1's console (the synthetic console over VMBus) moves child1's VMBus packets
    connect(manager, "child1")
    packets_before = io_number(manager, "vmbus.packets_out", "left") or 0
    manager.keyboard.type("echo vmbus-panel")
    manager.keyboard.press("Enter")
    wait_console(manager, "child1", "\nvmbus-panel", timeout_ms=10_000)
    manager.wait_for_function(
        """([before]) => {
             const cell = document.querySelector('#io tr[data-row="vmbus.packets_out"] td[data-side="left"][data-col="count"]');
             return Number(cell.textContent.replace(/,/g, '')) > before;
           }""", arg=[packets_before], timeout=10_000)

    # a disk workload on child1 shows as data written and a throughput in MB/s (a rate over the last seconds)
    written_before = io_number(manager, "disk.bytes_written", "left") or 0
    manager.keyboard.type("dd write 256")
    manager.keyboard.press("Enter")
    manager.wait_for_function(
        """() => {
             const cell = document.querySelector('#io tr[data-row="disk.throughput"] td[data-side="left"]');
             return Number(cell.textContent.replace(/,/g, '')) > 0;
           }""", timeout=10_000)
    wait_console(manager, "child1", "MB/s", timeout_ms=10_000)
    assert (io_number(manager, "disk.bytes_written", "left") or 0) > written_before

    # any partition can be put in either column
    panel.get_by_label("Compare").select_option("root")
    expect(panel.locator('thead th.io-side[data-side="left"] .io-name')).to_have_text("root")
    expect(io_cell(manager, "worker.requests", "left")).to_have_text(re.compile(r"^[\d,]+$"))


def test_io_rates_come_from_counter_deltas_and_snapshot_times(manager: Page) -> None:
    rates = manager.evaluate("""async () => {
      const { RateWindow } = await import('/static/js/io.js');
      const w = new RateWindow(2);
      const out = {};
      out.alone = (w.push(10, { a: 0 }), w.rate('a'));
      w.push(11, { a: 50 });
      w.push(12, { a: 100, b: 30 });
      out.a = w.rate('a');              // (100 - 0) / (12 - 10)
      out.b = w.rate('b');              // appeared since: counted from 0
      out.missing = w.rate('c');
      w.push(14, { a: 300, b: 30 });    // the window keeps the last 2 s: base is t=12
      out.a_later = w.rate('a');
      w.push(1, { a: 5 });              // a restarted lab: its clock starts again
      out.restarted = w.rate('a');
      return out;
    }""")
    assert rates == {"alone": None, "a": 50, "b": 15, "missing": None, "a_later": 100, "restarted": None}
