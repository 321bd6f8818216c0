"""Labs and their partitions: create, describe, act, change settings, download a disk, counters, restart."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterator
from typing import IO

from flask import Blueprint, Response, current_app, jsonify, request

from hyperlab.web import access
from hyperlab.web.access import HttpError
from hyperlab.web.labs import LabError, LabHandle

bp = Blueprint("labs", __name__)

#: Partition actions the API forwards; anything else is a 400 before it reaches the lab process.
ACTIONS = ("start", "turn_off", "shut_down", "reset", "pause", "resume")

#: Disk downloads are streamed in pieces of this size.
DISK_CHUNK = 1 << 20


def describe(lab: LabHandle) -> dict:
    """The lab's description; a lab whose process dies during the call is described as stopped."""
    try:
        return lab.describe()
    except LabError as exc:
        if exc.status == 503 and not lab.alive:
            return lab.describe()
        raise


@bp.get("/labs")
def list_labs() -> Response:
    """Labs of this browser session (usually zero or one)."""
    labs = [access.manager().get(lab_id) for lab_id in access.session_lab_ids()]
    return jsonify({"labs": [describe(lab) for lab in labs if lab is not None]})


@bp.post("/labs")
def create_lab() -> tuple[Response, int]:
    """Get or create this session's lab: idempotent, so a page reload never starts a second lab."""
    created = not access.session_lab_ids()
    lab = access.own_lab(create=True)
    assert lab is not None
    return jsonify(describe(lab)), 201 if created else 200


@bp.get("/labs/<lab_id>")
def get_lab(lab_id: str) -> Response:
    return jsonify(describe(access.session_lab(lab_id)))


@bp.get("/labs/<lab_id>/partitions")
def list_partitions(lab_id: str) -> Response:
    return jsonify({"partitions": access.session_lab(lab_id).partitions()})


@bp.get("/labs/<lab_id>/partitions/<name>")
def get_partition(lab_id: str, name: str) -> Response:
    return jsonify(access.session_lab(lab_id).partition(name))


@bp.post("/labs/<lab_id>/partitions/<name>/actions/<action>")
def partition_action(lab_id: str, name: str, action: str) -> Response:
    """Run ``action`` on partition ``name``; answers the partition as it is after the action."""
    lab = access.session_lab(lab_id)
    if action not in ACTIONS:
        lab.partition(name)  # an unknown partition is a 404 even with a bad action
        raise HttpError(400, f"unknown action {action!r}; expected one of: {', '.join(ACTIONS)}")
    return jsonify(lab.action(name, action))


@bp.put("/labs/<lab_id>/partitions/<name>/settings")
def partition_settings(lab_id: str, name: str) -> Response:
    """Change ``memory_mb`` / ``integration_services``; the lab checks them, they apply at the next start."""
    lab = access.session_lab(lab_id)
    changes = request.get_json(force=True, silent=True)  # any content type; malformed JSON is None
    if not isinstance(changes, dict):
        lab.partition(name)  # an unknown partition is a 404 even with a bad body
        raise HttpError(400, 'the body must be a JSON object, e.g. {"integration_services": true}')
    return jsonify(lab.update_settings(name, changes))


@bp.get("/labs/<lab_id>/partitions/<name>/disk.vhd")
def download_disk(lab_id: str, name: str) -> Response:
    """The partition's VHD file, only while the partition is off (a disk in use may be mid-write).

    The file is the one the lab itself names (``disk_file``), never a client's path,
    and must be a regular file. The last piece is sent only after checking that the partition stayed
    off (and did not boot in between): a download that raced a start is cut short, never passed off
    as a consistent disk.
    """
    lab = access.session_lab(lab_id)
    partition = lab.partition(name)
    path = lab.disk_file(name)
    if not path:
        raise HttpError(404, f"{name} has no disk")
    _require_off(partition)
    boots = lab.counters().get(f"{name}.boots")
    disk_file = _open_regular_file(path, name)
    try:
        _require_off(lab.partition(name))  # it may have been started while we opened the file
        size = os.fstat(disk_file.fileno()).st_size
    except BaseException:
        disk_file.close()
        raise

    def still_off() -> bool:
        return lab.partition(name).get("state") == "off" and lab.counters().get(f"{name}.boots") == boots

    response = Response(_stream_disk(disk_file, size, still_off), mimetype="application/octet-stream",
                        direct_passthrough=True)
    response.call_on_close(disk_file.close)  # also when the body is never read (HEAD, client gone)
    response.content_length = size
    filename = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{lab_id}-{name}.vhd")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _require_off(partition: dict) -> None:
    state = partition.get("state")
    if state != "off":
        raise HttpError(409, f"cannot download the disk of {partition.get('name')} while it is {state}: "
                             "turn it off or shut it down first (a disk in use may be mid-write)")


def _open_regular_file(path: str, name: str) -> IO[bytes]:
    """Open ``path`` for reading if it is a regular file: no symlink at the end, no FIFO or device."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)  # O_NONBLOCK: opening a FIFO must not hang the request
    except OSError:
        current_app.logger.warning("disk of %s: cannot open %s", name, path, exc_info=True)
        raise HttpError(404, f"the disk file of {name} is missing on the server") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        current_app.logger.warning("disk of %s: %s is not a regular file", name, path)
        raise HttpError(404, f"the disk of {name} is not a regular file on the server")
    return os.fdopen(fd, "rb")


def _stream_disk(disk_file: IO[bytes], size: int, still_off: Callable[[], bool]) -> Iterator[bytes]:
    """``size`` bytes of the file; the last piece only if ``still_off()`` (else the download is cut)."""
    remaining = size
    while remaining > 0:
        chunk = disk_file.read(min(DISK_CHUNK, remaining))
        if not chunk:
            raise OSError(f"disk file shrank while it was being sent ({remaining} bytes short)")
        remaining -= len(chunk)
        if remaining == 0 and not still_off():
            raise OSError("the partition started while its disk was being sent; download cut short")
        yield chunk


@bp.get("/labs/<lab_id>/counters")
def get_counters(lab_id: str) -> Response:
    """All telemetry counters of the lab (dotted names, see docs/telemetry.md)."""
    return jsonify({"counters": access.session_lab(lab_id).counters()})


@bp.post("/labs/<lab_id>/restart")
def restart_lab(lab_id: str) -> Response:
    """Start a fresh lab process (fresh partitions) under the same id, e.g. after the lab stopped."""
    lab = access.session_lab(lab_id)
    lab.restart()
    return jsonify(describe(lab))


