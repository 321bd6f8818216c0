"""The instructor's live dashboard in a real browser (Playwright, Debian's Chromium) against a real server
(gunicorn), with a student in another browser on the lesson page: the heat map fills without a reload;
the instructor spectates the student's console, takes it over (the student sees a banner while it lasts),
resets a partition, sends messages, runs the lesson in lockstep, exports the CSV and opens the projector
view — each checked from both sides, and every one of them in the audit log. A student reaches none of it.
"""

from __future__ import annotations

import re
import time
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
    with LiveServer(tmp_path_factory.mktemp("browser-dashboard"), env=env) as live:
        yield live


def watch_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def signed_in(browser: Browser, server: LiveServer) -> BrowserContext:
    context = browser.new_context()
    assert context.request.post(server.url + "/api/instructor/sign-in", data={"secret": SECRET}).ok
    return context


def new_class(context: BrowserContext, server: LiveServer, name: str) -> dict:
    answer = context.request.post(server.url + "/api/classes", data={"name": name, "lessons": ["tiny"]})
    assert answer.status == 201, answer.text()
    return answer.json()


def joined_student(browser: Browser, server: LiveServer, code: str, name: str) -> tuple[BrowserContext, Page]:
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.url + "/join")
    page.get_by_label("Class code").fill(code)
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Join").click()
    expect(page.locator("#current")).to_contain_text(f"as {name}")
    return context, page


def settled(context: BrowserContext, server: LiveServer) -> None:
    """Wait until the lesson page has set the lab up for the lesson (its process is the one set up)."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    streak = 0
    while streak < 3:
        assert time.monotonic() < deadline, "the lesson's lab was not set up"
        state = context.request.get(server.url + "/api/lessons/tiny/state").json()
        streak = streak + 1 if state["lab"]["set_up"] and state["lab"]["alive"] else 0
        time.sleep(0.5)


def console_text(context: BrowserContext, server: LiveServer, lab: str, partition: str) -> str:
    return context.request.get(f"{server.url}/api/labs/{lab}/partitions/{partition}/console").json()["text"]


def test_dashboard_spectate_take_over_reset_message_lockstep_export_projector(browser: Browser,
                                                                              server: LiveServer) -> None:
    teacher_ctx = signed_in(browser, server)
    klass = new_class(teacher_ctx, server, "Hypervisors 101")
    teacher = teacher_ctx.new_page()
    teacher_errors = watch_errors(teacher)
    teacher.goto(f"{server.url}/instructor/classes/{klass['id']}")
    expect(teacher.locator("#link-state")).to_have_text("live", timeout=TIMEOUT_MS)
    expect(teacher.locator("#join-code")).to_have_text(klass["join_code"])
    expect(teacher.locator("#empty-roster")).to_be_visible()

    # the student joins and opens the lesson: a row appears, step 1 (no check) done, the lab running
    student_ctx, student = joined_student(browser, server, klass["join_code"], "Ada <i>L</i>")
    student_errors = watch_errors(student)
    student.goto(server.url + "/lessons/tiny")  # the page opens the lesson: the lab is set up for it
    expect(student.locator("#next-step")).to_be_enabled(timeout=TIMEOUT_MS)  # step 1 has no check
    settled(student_ctx, server)
    lab = student_ctx.request.get(server.url + "/api/session").json()["lab_id"]
    row = teacher.locator(f'tr[data-student="{lab}"]')
    expect(row.locator("th")).to_have_text("Ada <i>L</i>", timeout=TIMEOUT_MS)  # text, not HTML
    expect(row.locator("td.hm").first).to_have_class(re.compile("hm-done"), timeout=TIMEOUT_MS)
    expect(row.locator("td.lab")).to_have_text("running", timeout=TIMEOUT_MS)

    # spectate: what the student runs shows in the instructor's terminal and in the row's thumbnail
    row.get_by_role("button", name="Watch").click()
    expect(teacher.locator("#console-mode")).to_have_text("Spectating Ada <i>L</i>'s child1 (read-only).")
    typed = student_ctx.request.post(f"{server.url}/api/labs/{lab}/partitions/child1/console",
                                     data={"text": "syscalls 3", "wait": True}, timeout=TIMEOUT_MS)
    assert typed.ok, typed.text()
    expect(teacher.locator("#console-term .xterm-rows")).to_contain_text("syscalls 3", timeout=TIMEOUT_MS)
    expect(row.locator("pre.thumb")).to_contain_text("child1:", timeout=TIMEOUT_MS)
    teacher.locator("#console-term .xterm-screen").click()
    teacher.keyboard.type("echo spectator-typed")
    teacher.keyboard.press("Enter")
    teacher.wait_for_timeout(500)
    assert "spectator-typed" not in console_text(student_ctx, server, lab, "child1")  # read-only

    # take over: the student sees a banner; the instructor's keys run in the student's console
    teacher.get_by_role("button", name="Take over").click()
    expect(teacher.locator("#console-mode")).to_contain_text("Taking over Ada <i>L</i>'s child1")
    banner = student.locator(".class-notice.take-over")
    expect(banner).to_have_text("Your instructor is typing in your child1 console.", timeout=TIMEOUT_MS)
    teacher.locator("#console-term .xterm-screen").click()
    teacher.keyboard.type("syscalls 5")
    teacher.keyboard.press("Enter")
    teacher.wait_for_function(
        f"() => fetch('/api/classes/{klass['id']}/audit').then(r => r.ok)")  # the page still has its session
    student.wait_for_function(
        f"() => fetch('/api/labs/{lab}/partitions/child1/console').then(r => r.json())"
        ".then(j => j.text.includes('syscalls 5'))", timeout=TIMEOUT_MS)
    teacher.get_by_role("button", name="Hand back").click()
    expect(banner).to_have_count(0, timeout=TIMEOUT_MS)
    expect(student.locator(".class-notice.message").last).to_have_text(
        re.compile("handed your child1 console back"), timeout=TIMEOUT_MS)

    # reset one partition from the console panel: the student is told
    teacher.get_by_label("Partition", exact=True).select_option("child2")
    teacher.get_by_role("button", name="Reset this partition").click()
    expect(teacher.locator("#status")).to_have_text("Ada <i>L</i>'s child2 was reset.", timeout=TIMEOUT_MS)
    expect(student.locator(".class-notice.reset")).to_have_text(
        re.compile("Your instructor reset your partition child2"), timeout=TIMEOUT_MS)
    teacher.get_by_role("button", name="Close").click()

    # messages: to Ada from her row, and to the whole class
    row.get_by_role("button", name="Message").click()
    teacher.get_by_label("Text", exact=True).fill("Look at the exits of child2")
    teacher.get_by_role("button", name="Send").click()
    expect(teacher.locator("#status")).to_have_text("Message sent to Ada <i>L</i>.")
    expect(student.locator(".class-notice.message", has_text="Look at the exits")).to_have_text(
        re.compile("From your instructor: Look at the exits of child2"), timeout=TIMEOUT_MS)
    teacher.get_by_label("To", exact=True).select_option("")
    teacher.get_by_label("Text", exact=True).fill("<b>Break</b> in 5 minutes")
    teacher.get_by_role("button", name="Send").click()
    expect(student.locator(".class-notice.message", has_text="Break")).to_have_text(
        re.compile("To the class: <b>Break</b> in 5 minutes"), timeout=TIMEOUT_MS)

    # lockstep from the dashboard: the student cannot pass the released step until the next is released
    teacher.get_by_role("button", name="Lockstep from step 1").click()
    expect(teacher.locator(".lockstep")).to_contain_text("released up to step 1 of 3", timeout=TIMEOUT_MS)
    expect(row.locator("td.hm").nth(2)).to_have_class(re.compile("hm-locked"), timeout=TIMEOUT_MS)
    expect(student.locator("#next-step")).to_be_disabled(timeout=TIMEOUT_MS)  # the student's page holds them
    held = student_ctx.request.post(server.url + "/api/lessons/tiny/goto", data={"index": 1})
    assert held.status == 409 and "not released yet" in held.json()["error"]
    teacher.get_by_role("button", name="Release step 2").click()
    expect(teacher.locator(".lockstep")).to_contain_text("released up to step 2 of 3", timeout=TIMEOUT_MS)
    expect(student.locator("#next-step")).to_be_enabled(timeout=TIMEOUT_MS)
    assert student_ctx.request.post(server.url + "/api/lessons/tiny/goto", data={"index": 1}).ok
    expect(row.locator("td.hm").nth(1)).to_have_class(re.compile("hm-(working|done)"), timeout=TIMEOUT_MS)

    # the export link gives the class's CSV
    href = teacher.locator("#export-link").get_attribute("href")
    csv_text = teacher_ctx.request.get(server.url + href).text()
    assert csv_text.splitlines()[0].startswith("student,display_name,lesson,step")
    assert "Ada <i>L</i>,tiny,look" in csv_text

    # the projector view: the aggregate, no names
    projector = teacher_ctx.new_page()
    projector_errors = watch_errors(projector)
    projector.goto(f"{server.url}/instructor/classes/{klass['id']}/projector")
    expect(projector.locator(".joined")).to_have_text("1 student joined", timeout=TIMEOUT_MS)
    expect(projector.locator('.proj-step[data-step="look"] .proj-count')).to_have_text("1 of 1 passed")
    expect(projector.locator("body")).not_to_contain_text("Ada")

    audit = [e["action"] for e in teacher_ctx.request.get(
        f"{server.url}/api/classes/{klass['id']}/audit").json()["entries"]]
    for action in ("spectate", "take_over", "take_over_end", "reset", "message", "lockstep", "export"):
        assert action in audit, (action, audit)
    assert teacher_errors == student_errors == projector_errors == []
    teacher_ctx.close()
    student_ctx.close()


def test_the_projector_shows_predictions_against_the_measured_value(browser: Browser, server: LiveServer) -> None:
    teacher_ctx = signed_in(browser, server)
    klass = new_class(teacher_ctx, server, "Predictions")
    students = []
    for name, guess in (("P1", 50), ("P2", 100), ("P3", 5000)):
        ctx, _ = joined_student(browser, server, klass["join_code"], name)
        students.append(ctx)
        assert ctx.request.post(server.url + "/api/lessons/tiny/open", timeout=TIMEOUT_MS).ok
        ctx.request.get(server.url + "/api/lessons/tiny/state")
        assert ctx.request.post(server.url + "/api/lessons/tiny/goto", data={"index": 1}).ok
        answer = ctx.request.post(server.url + "/api/lessons/tiny/steps/count-syscalls/prediction",
                                  data={"value": guess})
        assert answer.ok, answer.text()
    lab = students[0].request.get(server.url + "/api/session").json()["lab_id"]
    students[0].request.post(f"{server.url}/api/labs/{lab}/partitions/child1/console",
                             data={"text": "syscalls 100", "wait": True}, timeout=TIMEOUT_MS)
    students[0].request.get(server.url + "/api/lessons/tiny/state")  # the check passes: measured
    projector = teacher_ctx.new_page()
    projector.goto(f"{server.url}/instructor/classes/{klass['id']}/projector")
    step = projector.locator('.proj-step[data-step="count-syscalls"]')
    expect(step.locator(".proj-count")).to_have_text(re.compile(r"^1 of 3 passed"), timeout=TIMEOUT_MS)
    expect(step.locator("circle.guess")).to_have_count(3)
    expect(step.locator("line.measured")).to_have_count(1)
    words = step.locator(".proj-words").inner_text()
    assert words.startswith("3 prediction(s) from 50 to 5,000; measured 1")  # the lab's own count, >= 100
    for ctx in students:
        ctx.close()
    teacher_ctx.close()


def test_a_student_reaches_no_dashboard_stream_or_console_of_the_class(browser: Browser, server: LiveServer) -> None:
    teacher_ctx = signed_in(browser, server)
    klass = new_class(teacher_ctx, server, "Closed")
    other = new_class(teacher_ctx, server, "Other")
    ada_ctx, ada = joined_student(browser, server, klass["join_code"], "Ada")
    bob_ctx, _ = joined_student(browser, server, other["join_code"], "Bob")
    assert bob_ctx.request.post(server.url + "/api/lessons/tiny/open", timeout=TIMEOUT_MS).ok
    bob_lab = bob_ctx.request.get(server.url + "/api/session").json()["lab_id"]
    for path in (f"/instructor/classes/{klass['id']}", f"/instructor/classes/{klass['id']}/projector"):
        ada.goto(server.url + path)
        assert ada.url == server.url + "/instructor"  # sent to the sign-in form
        expect(ada.locator("#sign-in")).to_be_visible()
    statuses = ada.evaluate("""async (paths) => Promise.all(paths.map(
        (p) => fetch(p, {method: p.endsWith('messages') ? 'POST' : 'GET', headers: {'Content-Type': 'application/json'},
                         body: p.endsWith('messages') ? '{"text": "x"}' : undefined}).then((r) => r.status)))""",
                            [f"/api/classes/{klass['id']}/dashboard", f"/api/classes/{klass['id']}/dashboard/events",
                             f"/api/classes/{klass['id']}/messages", f"/api/classes/{other['id']}/dashboard",
                             f"/api/classes/{klass['id']}/progress.csv", f"/api/classes/{klass['id']}/audit"])
    assert statuses == [403] * 6
    # a WebSocket to another student's console, by the instructor's route or the student's own: refused
    closed = ada.evaluate("""async (urls) => Promise.all(urls.map((u) => new Promise((done) => {
        const ws = new WebSocket(u); ws.onopen = () => done('open'); ws.onerror = () => done('refused'); })))""",
                          [f"{server.ws_url}/ws/classes/{other['id']}/students/{bob_lab}/partitions/root/console",
                           f"{server.ws_url}/ws/labs/{bob_lab}/partitions/root/console"])
    assert closed == ["refused", "refused"]
    ada_ctx.close()
    bob_ctx.close()
    teacher_ctx.close()
