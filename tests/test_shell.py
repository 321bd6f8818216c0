"""The guest shell's line editor, driven with the bytes a terminal sends for each key.

Every partition is covered, because the keys travel different ways: child1's over the VMBus
synthetic console, child2's and the root's through the emulated 16550 UART. Each test checks
what the student sees (the edited line as a terminal draws it) and which command really ran.
"""

from __future__ import annotations

import pytest
from guestlab import GuestLab, screen

UP, DOWN, RIGHT, LEFT = b"\x1b[A", b"\x1b[B", b"\x1b[C", b"\x1b[D"
HOME, END, DELETE = b"\x1b[H", b"\x1b[F", b"\x1b[3~"
BACKSPACE, TAB, ENTER = b"\x7f", b"\t", b"\r"
CTRL_C, CTRL_U, CTRL_W, CTRL_K = b"\x03", b"\x15", b"\x17", b"\x0b"
PARTITIONS = ["child1", "child2", "root"]  # VMBus console, emulated UART, the root's UART
LINE_MAX = 1023  # characters the shell reads in one line (guests/user/user.h)


@pytest.fixture(scope="module")
def lab():
    lab = GuestLab()
    yield lab
    lab.close()


def keys(lab: GuestLab, name: str, data: bytes, expect: bytes | None = None) -> tuple[str, list[str]]:
    """Press keys (ending in Enter) at a fresh prompt; returns the output and the screen it draws:
    row 0 is the line as edited, the rows after it what the command printed."""
    lab.type(name, "")  # a fresh, empty prompt
    mark = lab.send(name, data)
    out = lab.wait_for(name, expect or lab.prompt(name), mark)
    return out, screen(out)


@pytest.mark.parametrize("name", PARTITIONS)
def test_up_arrow_runs_the_previous_command_again(lab: GuestLab, name: str) -> None:
    lab.type(name, "syscalls 300")
    before = lab.counters()[f"{name}.syscalls"]
    out, rows = keys(lab, name, UP + ENTER)
    assert rows[0] == "syscalls 300"
    assert "300 system calls: " in out
    assert "[A" not in out and "unknown command" not in out
    assert lab.counters()[f"{name}.syscalls"] - before >= 300


@pytest.mark.parametrize("name", PARTITIONS)
def test_up_and_down_walk_the_history_and_come_back_to_the_line_being_typed(lab: GuestLab, name: str) -> None:
    lab.type(name, "echo older")
    lab.type(name, "echo newer")
    _, rows = keys(lab, name, UP + UP + ENTER)
    assert rows[:2] == ["echo older", "older"]
    _, rows = keys(lab, name, b"echo unfinished" + UP + UP + DOWN + DOWN + ENTER)
    assert rows[:2] == ["echo unfinished", "unfinished"]


@pytest.mark.parametrize("name", PARTITIONS)
def test_left_and_right_insert_in_the_middle_of_the_line(lab: GuestLab, name: str) -> None:
    _, rows = keys(lab, name, b"echo wrd" + LEFT + LEFT + b"o" + RIGHT + b"l" + ENTER)
    assert rows[:2] == ["echo world", "world"]


@pytest.mark.parametrize("name", PARTITIONS)
def test_backspace_and_delete_in_the_middle_home_and_end(lab: GuestLab, name: str) -> None:
    # "echo abcd", back two: Backspace takes the b, Delete the c.
    _, rows = keys(lab, name, b"echo abcd" + LEFT + LEFT + BACKSPACE + DELETE + ENTER)
    assert rows[:2] == ["echo ad", "ad"]
    _, rows = keys(lab, name, b"cho mid" + HOME + b"e" + END + b"dle" + ENTER)
    assert rows[:2] == ["echo middle", "middle"]


@pytest.mark.parametrize("name", PARTITIONS)
def test_ctrl_u_and_ctrl_w_kill_text(lab: GuestLab, name: str) -> None:
    _, rows = keys(lab, name, b"echo wrong" + CTRL_U + b"echo right" + ENTER)
    assert rows[:2] == ["echo right", "right"]
    _, rows = keys(lab, name, b"echo keep drop these  " + CTRL_W + CTRL_W + ENTER)
    assert rows[:2] == ["echo keep", "keep"]
    _, rows = keys(lab, name, b"echo head tail" + LEFT * 5 + CTRL_K + ENTER)
    assert rows[:2] == ["echo head", "head"]


@pytest.mark.parametrize("name", PARTITIONS)
def test_tab_completes_a_unique_command_and_lists_an_ambiguous_one(lab: GuestLab, name: str) -> None:
    before = lab.counters()[f"{name}.syscalls"]
    out, rows = keys(lab, name, b"sysc" + TAB + b"50" + ENTER)
    assert rows[0] == "syscalls 50"
    assert "50 system calls: " in out
    assert lab.counters()[f"{name}.syscalls"] - before >= 50
    lab.type(name, "")
    mark = lab.send(name, b"c" + TAB)
    out = lab.wait_for(name, lab.prompt(name) + b"c", mark)
    assert screen(out)[1].split() == ["clear", "crash", "cat"]  # the candidates, then the line again
    lab.send(name, CTRL_U + ENTER)
    lab.wait_for(name, lab.prompt(name), mark + len(out.encode()))


@pytest.mark.parametrize("name", PARTITIONS)
def test_clear_erases_the_screen(lab: GuestLab, name: str) -> None:
    assert "clear           clear the screen" in lab.type(name, "help")
    out, rows = keys(lab, name, b"cle" + TAB + ENTER)
    assert "\x1b[2J" in out
    assert rows == [f"{name}$"]  # a fresh screen with only the prompt on it


@pytest.mark.parametrize("name", PARTITIONS)
def test_ctrl_c_abandons_the_line_at_the_prompt(lab: GuestLab, name: str) -> None:
    lab.type(name, "")
    mark = lab.send(name, b"echo never")
    lab.wait_for(name, b"echo never", mark)  # typed, as a student does, before Ctrl-C
    lab.send(name, CTRL_C)
    out = lab.wait_for(name, lab.prompt(name), mark)
    assert screen(out)[0] == "echo never^C"
    assert "never\r\n" not in out
    assert "again" in lab.type(name, "echo again")


def test_ctrl_c_still_stops_a_running_program(lab: GuestLab) -> None:
    mark = lab.send("child1", b"spin 100000\r")
    lab.wait_for("child1", b"spin 100000\r\n", mark)
    out = lab.wait_for("child1", b"child1$ ", lab.send("child1", CTRL_C))
    assert "^C" in out
    assert "alive" in lab.type("child1", "echo alive")


@pytest.mark.parametrize("name", PARTITIONS)
def test_a_long_pasted_line_runs_whole(lab: GuestLab, name: str) -> None:
    text = "".join(chr(ord("a") + i % 26) for i in range(900))
    _, rows = keys(lab, name, f"echo {text}".encode() + ENTER)
    assert rows[1] == text


@pytest.mark.parametrize("name", PARTITIONS)
def test_a_paste_longer_than_a_line_rings_the_bell_says_so_and_runs_nothing(lab: GuestLab, name: str) -> None:
    mark = lab.send(name, b"echo " + b"z" * LINE_MAX + ENTER + b"echo after the paste" + ENTER)
    out = lab.wait_for(name, b"after the paste\r\n" + lab.prompt(name), mark)
    assert out.count("\a") == 1  # one bell, when the line filled up
    assert f"line too long: the shell reads at most {LINE_MAX} characters; nothing was run" in out
    assert "\nzzz" not in out  # the cut-off line was not echoed back: it did not run


def test_after_the_bell_the_line_can_be_edited_and_run(lab: GuestLab) -> None:
    """The bell says the line is full; what the student does next (here: kill it and type another) runs."""
    lab.type("child2", "")
    mark = lab.send("child2", b"echo " + b"q" * LINE_MAX)
    lab.wait_for("child2", b"\a", mark)
    assert "\r\nfine\r\n" in lab.type("child2", "\x15echo fine")  # it ran
