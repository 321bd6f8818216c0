"""Consoles over REST: read a partition's recent output, type into it and optionally wait for the prompt."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from hyperlab.web import access
from hyperlab.web.access import HttpError
from hyperlab.web.shell import console_text, prompt_of, type_and_wait

bp = Blueprint("consoles", __name__)

#: Largest text one console request may type (as the console WebSocket's message cap).
CONSOLE_INPUT_MAX = 4096
#: Longest a console request may wait for the prompt.
CONSOLE_WAIT_MAX_S = 120.0


@bp.get("/labs/<lab_id>/partitions/<name>/console")
def console_output(lab_id: str, name: str) -> Response:
    """The console's recent output (the lab keeps the last 64 KiB) as text, and whether it ends at the prompt."""
    lab = access.session_lab(lab_id)
    lab.partition(name)
    text = console_text(lab.console_text(name))
    return jsonify({"text": text, "prompt": text.endswith(prompt_of(name))})


@bp.post("/labs/<lab_id>/partitions/<name>/console")
def console_input(lab_id: str, name: str) -> Response:
    """Type into a partition's console (what a student types), optionally waiting for the shell's prompt.

    Body: ``{"text": "dd write 1", "enter": true, "wait": false, "timeout": 30}``. With ``wait`` the answer
    comes when the prompt shows again (or the partition crashes or stops, or ``timeout`` seconds pass)
    and carries what the command printed. This is how scripts and notebook cells (which cannot hold a
    WebSocket open) drive the shell.
    """
    lab = access.session_lab(lab_id)
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        lab.partition(name)
        raise HttpError(400, 'the body must be a JSON object, e.g. {"text": "ver", "wait": true}')
    text = body.get("text", "")
    if not isinstance(text, str):
        raise HttpError(400, "text must be a string")
    enter = body.get("enter", bool(text))
    wait = body.get("wait", False)
    timeout = body.get("timeout", 30)
    if not isinstance(enter, bool) or not isinstance(wait, bool):
        raise HttpError(400, "enter and wait must be true or false")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= CONSOLE_WAIT_MAX_S:
        raise HttpError(400, f"timeout must be a number of seconds, more than 0 and at most {CONSOLE_WAIT_MAX_S:g}")
    data = text.encode("utf-8") + (b"\r" if enter else b"")
    if len(data) > CONSOLE_INPUT_MAX:
        raise HttpError(400, f"at most {CONSOLE_INPUT_MAX} bytes of input per request")
    partition = lab.partition(name)
    if not wait:
        if data:
            lab.send_console(name, data)
        return jsonify({"output": "", "prompt": False, "state": partition["state"], "timed_out": False})
    return jsonify(type_and_wait(lab, name, data, float(timeout)))


