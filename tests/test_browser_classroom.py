"""The classroom in a real browser (Playwright, Debian's Chromium) against a real server: the instructor
signs in, makes a class and reads its join code; a student (another browser) joins with it at /join;
the instructor's heat map shows the student and their progress without a reload, holds the class in
lockstep, and links the CSV export; a student who opens /instructor gets the sign-in form and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from liveserver import LiveServer
from playwright.sync_api import Browser, BrowserContext, Page, expect

FIXTURES = Path(__file__).resolve().parent / "lesson_fixtures"
SECRET = "correct horse battery staple"
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"HYPERLAB_INSTRUCTOR_SECRET": SECRET, "HYPERLAB_LESSONS_DIR": str(FIXTURES)}
    with LiveServer(tmp_path_factory.mktemp("browser-classroom"), env=env) as live:
        yield live


def opened(browser: Browser, url: str) -> tuple[BrowserContext, Page, list[str]]:
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    return context, page, errors


def test_a_class_from_the_instructors_and_the_students_side(browser: Browser, server: LiveServer) -> None:
    teacher_ctx, teacher, teacher_errors = opened(browser, server.url + "/instructor")
    teacher.get_by_label("Instructor secret").fill("not the secret")
    teacher.get_by_role("button", name="Sign in").click()
    expect(teacher.locator("#sign-in-error")).to_have_text("wrong instructor secret")
    teacher.get_by_label("Instructor secret").fill(SECRET)
    teacher.get_by_role("button", name="Sign in").click()
    expect(teacher.locator("#dashboard")).to_be_visible()
    teacher.get_by_label("Name").fill("Hypervisors 101")
    teacher.get_by_label("A tiny lesson").check()
    teacher.get_by_role("button", name="Create class").click()
    code_box = teacher.locator(".join-code")
    expect(code_box).to_have_text(re.compile(r"^[A-Z2-9]{6}$"))
    code = code_box.inner_text()

    student_ctx, student, student_errors = opened(browser, server.url + "/join")
    student.get_by_label("Class code").fill(code.lower())
    student.get_by_label("Your name").fill("Ada <b>Lovelace</b>")
    student.get_by_role("button", name="Join").click()
    expect(student.locator("#current")).to_contain_text("You are in “Hypervisors 101” as Ada <b>Lovelace</b>")
    expect(student.get_by_role("link", name="Go to the lessons")).to_have_attribute("href", "/")

    # the heat map shows the student within a poll, their name as text, their lab not started yet
    row = teacher.locator("table.heatmap tbody tr")
    expect(row).to_have_count(1, timeout=TIMEOUT_MS)
    expect(row.locator("th")).to_have_text("Ada <b>Lovelace</b>")
    expect(row.locator("td").first).to_have_text("none")
    # the student opens the lesson (its first step has no check): the map shows it done, the lab running
    assert student_ctx.request.post(server.url + "/api/lessons/tiny/open", timeout=TIMEOUT_MS).ok
    expect(row.locator("td.done")).to_have_count(1, timeout=TIMEOUT_MS)
    expect(row.locator("td").first).to_have_text("running", timeout=TIMEOUT_MS)

    # lockstep: the class waits at step 1 until the instructor releases step 2
    teacher.get_by_role("button", name="Lockstep from step 1").click()
    expect(teacher.locator(".lockstep")).to_contain_text("released up to step 1 of 3")
    held = student_ctx.request.post(server.url + "/api/lessons/tiny/goto", data={"index": 1})
    assert held.status == 409 and "not released yet" in held.json()["error"]
    teacher.get_by_role("button", name="Release step 2").click()
    expect(teacher.locator(".lockstep")).to_contain_text("released up to step 2 of 3")
    assert student_ctx.request.post(server.url + "/api/lessons/tiny/goto", data={"index": 1}).ok
    expect(row.locator("td.current")).to_have_count(1, timeout=TIMEOUT_MS)

    # the export link gives the class's CSV
    export = teacher.get_by_role("link", name="Export progress (CSV)")
    csv_text = teacher_ctx.request.get(server.url + export.get_attribute("href")).text()
    assert csv_text.splitlines()[0].startswith("student,display_name,lesson,step")
    assert "Ada <b>Lovelace</b>,tiny,look" in csv_text

    # a student at /instructor: the sign-in form, and the API refuses them
    _, peek, peek_errors = opened_in(student_ctx, server.url + "/instructor")
    expect(peek.locator("#sign-in")).to_be_visible()
    expect(peek.locator("#dashboard")).to_be_hidden()
    assert student_ctx.request.get(server.url + "/api/classes").status == 403
    assert teacher_errors == student_errors == peek_errors == []
    teacher_ctx.close()
    student_ctx.close()


def opened_in(context: BrowserContext, url: str) -> tuple[BrowserContext, Page, list[str]]:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    return context, page, errors
