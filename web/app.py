"""Flask application factory for the hyperlab site.

One web process holds one :class:`~hyperlab.web.labs.LabManager`; every lab it starts runs in its own OS
process, so the web process only routes bytes and JSON. ``hyperlab serve`` runs it on gunicorn with one
gevent worker: every connection (an open WebSocket too) is a cheap greenlet, and the lab registry lives
in this process, so more than one worker would split the students' labs.
"""

from __future__ import annotations

import atexit
import mimetypes
import os
from pathlib import Path
from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

import hyperlab.static
from hyperlab.web import db as database
from hyperlab.web import identity
from hyperlab.web.classes import ClassStore
from hyperlab.web.labs import LabManager
from hyperlab.web.progress import ProgressStore

#: Where the front end lives: the ``hyperlab.static`` package (``static/`` in the source tree).
STATIC_DIR = Path(hyperlab.static.__file__).resolve().parent

#: Config keys read from the environment when ``create_app`` is not given them.
_ENV_KEYS = ("HYPERLAB_SECRET_KEY", "HYPERLAB_DATA_DIR", "HYPERLAB_MAX_LABS", "HYPERLAB_ALLOWED_ORIGINS",
             "HYPERLAB_LESSONS_DIR", "HYPERLAB_PROGRESS_DB", "HYPERLAB_DATABASE_URL", "HYPERLAB_SESSION_DAYS",
             "HYPERLAB_SESSIONS_PER_MINUTE", "HYPERLAB_MAX_BODY", "HYPERLAB_ALLOWED_HOSTS",
             "HYPERLAB_TRUSTED_PROXIES", "HYPERLAB_INSTRUCTOR_SECRET", "HYPERLAB_INSTRUCTOR_SECRET_FILE",
             "HYPERLAB_STUCK_MINUTES", "HYPERLAB_IDLE_MINUTES")


def _default_config() -> dict[str, Any]:
    """Defaults, overridden by ``HYPERLAB_*`` environment variables, overridden by ``create_app(config)``."""
    config: dict[str, Any] = {
        "HYPERLAB_DATA_DIR": None,
        "HYPERLAB_MAX_LABS": 64,
        # A lab without a connected page, input or action for this long is ended (its disks stay); 0: never.
        "HYPERLAB_IDLE_MINUTES": 30,
        # Where the lessons are (None: the lessons shipped with hyperlab, ``hyperlab/lessons``).
        "HYPERLAB_LESSONS_DIR": None,
        # The database: a SQLAlchemy URL (postgresql://user:password@host/db), else the SQLite file
        # HYPERLAB_PROGRESS_DB (None: progress.sqlite3 in HYPERLAB_DATA_DIR, else in ~/.local/share/hyperlab).
        "HYPERLAB_DATABASE_URL": None,
        "HYPERLAB_PROGRESS_DB": None,
        # A session (identity, progress, lab disks) lasts this long after the student was last seen.
        "HYPERLAB_SESSION_DAYS": 30,
        # New sessions one client address (IPv6: one /64) may start per minute; a class behind one NAT
        # address needs about its head count here.
        "HYPERLAB_SESSIONS_PER_MINUTE": 30,
        # Instructor sign-in: the trainer's secret, or a file holding it (None: no instructor sign-in).
        "HYPERLAB_INSTRUCTOR_SECRET": None,
        "HYPERLAB_INSTRUCTOR_SECRET_FILE": None,
        # The instructor's heat map shows a student as stuck after this long on one step.
        "HYPERLAB_STUCK_MINUTES": 5,
        # Extra origins (scheme://host[:port]) allowed to open WebSockets and POST, e.g. behind a proxy.
        "HYPERLAB_ALLOWED_ORIGINS": [],
        # Host names this server answers to besides IP addresses and localhost ("*": any); others get 400.
        "HYPERLAB_ALLOWED_HOSTS": [],
        # Proxy addresses or networks whose X-Forwarded-For/-Proto/-Host/-Port headers are believed.
        "HYPERLAB_TRUSTED_PROXIES": [],
        # Largest request body in bytes; a larger one is answered 413 before it is read.
        "HYPERLAB_MAX_BODY": 64 * 1024,
        # Largest WebSocket message a client may send; a console keystroke burst or a paste fits easily.
        "HYPERLAB_WS_MAX_MESSAGE": 4096,
        # Keepalive pings keep idle consoles open through proxies and detect vanished browsers.
        "SOCK_SERVER_OPTIONS": {"ping_interval": 25},
        "SESSION_COOKIE_NAME": "hyperlab_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
    }
    for key in _ENV_KEYS:
        value = os.environ.get(key)
        if value:
            config[key] = value
    return config


def _normalise(config: dict[str, Any]) -> None:
    """Coerce values that may come from the environment as strings into their real types."""
    config["HYPERLAB_MAX_LABS"] = int(config["HYPERLAB_MAX_LABS"])
    config["HYPERLAB_IDLE_MINUTES"] = float(config["HYPERLAB_IDLE_MINUTES"])
    if config["HYPERLAB_IDLE_MINUTES"].is_integer():
        config["HYPERLAB_IDLE_MINUTES"] = int(config["HYPERLAB_IDLE_MINUTES"])
    data_dir = config.get("HYPERLAB_DATA_DIR")
    config["HYPERLAB_DATA_DIR"] = Path(data_dir) if data_dir else None
    lessons_dir = config.get("HYPERLAB_LESSONS_DIR")
    config["HYPERLAB_LESSONS_DIR"] = Path(lessons_dir) if lessons_dir else None
    db = config.get("HYPERLAB_PROGRESS_DB")
    config["HYPERLAB_PROGRESS_DB"] = Path(db) if db else database.default_sqlite_path(config["HYPERLAB_DATA_DIR"])
    for key, kind, low in (("HYPERLAB_SESSION_DAYS", float, 1e-6), ("HYPERLAB_SESSIONS_PER_MINUTE", int, 1),
                           ("HYPERLAB_STUCK_MINUTES", float, 0.0)):
        try:
            config[key] = kind(config[key])
        except (TypeError, ValueError):
            raise ValueError(f"{key} must be a number, not {config[key]!r}") from None
        if not config[key] >= low:
            raise ValueError(f"{key} must be at least {low}, not {config[key]!r}")
    secret_file = config.get("HYPERLAB_INSTRUCTOR_SECRET_FILE")
    if secret_file and not config.get("HYPERLAB_INSTRUCTOR_SECRET"):
        try:
            config["HYPERLAB_INSTRUCTOR_SECRET"] = Path(secret_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"HYPERLAB_INSTRUCTOR_SECRET_FILE: cannot read {secret_file}: {exc}") from None
    secret = config.get("HYPERLAB_INSTRUCTOR_SECRET")
    if secret is not None and len(str(secret)) < 12:
        raise ValueError("HYPERLAB_INSTRUCTOR_SECRET must be at least 12 characters (students must not guess it)")
    origins = config.get("HYPERLAB_ALLOWED_ORIGINS") or []
    if isinstance(origins, str):
        origins = [o.strip() for o in origins.split(",") if o.strip()]
    config["HYPERLAB_ALLOWED_ORIGINS"] = [o.rstrip("/").lower() for o in origins]
    for key in ("HYPERLAB_ALLOWED_HOSTS", "HYPERLAB_TRUSTED_PROXIES"):
        config[key] = _names(config.get(key))
    config["HYPERLAB_MAX_BODY"] = int(config["HYPERLAB_MAX_BODY"])
    config["MAX_CONTENT_LENGTH"] = config["HYPERLAB_MAX_BODY"]  # also bounds bodies without a length
    options = dict(config.get("SOCK_SERVER_OPTIONS") or {})
    options.setdefault("ping_interval", 25)
    # simple-websocket closes with 1009 "Message is too big" itself when a client exceeds this.
    options["max_message_size"] = int(config["HYPERLAB_WS_MAX_MESSAGE"])
    config["SOCK_SERVER_OPTIONS"] = options


def _names(value: Any) -> list[str]:
    """A list setting from a comma-separated string (environment) or a list, lower-case, no blanks."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    return [str(i).strip().lower().rstrip(".") for i in items if str(i).strip()]


class _JSONProvider(DefaultJSONProvider):
    """JSON nested deeper than Python's recursion limit is a bad body (400), not a server error."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the site: REST API under ``/api``, WebSocket streams under ``/ws``, the page at ``/``.

    ``config`` overrides defaults and ``HYPERLAB_*`` environment variables. Without a
    ``HYPERLAB_SECRET_KEY`` (config or environment) the cookie signing key is generated once and kept in
    the database, so students' sessions — and with them their progress, labs and disks — outlast a restart.
    """
    # Module scripts are refused by browsers unless served as JavaScript; some systems lack these types.
    mimetypes.add_type("text/javascript", ".mjs")
    mimetypes.add_type("application/wasm", ".wasm")

    Flask.json_provider_class = _JSONProvider
    app = Flask(__name__, static_folder=str(STATIC_DIR), static_url_path="/static")
    app.config.update(_default_config())
    if config:
        app.config.update(config)
    _normalise(app.config)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep "id" first, as documented

    # The database first: migrations run now, so a server upgraded in place starts on the new schema.
    db = database.Database(database.database_url(app.config["HYPERLAB_DATABASE_URL"],
                                                 app.config["HYPERLAB_PROGRESS_DB"]))
    app.extensions["hyperlab.db"] = db
    app.extensions["hyperlab.progress"] = ProgressStore(db)
    app.extensions["hyperlab.classes"] = ClassStore(db)
    # Without a configured key, one generated once and kept in the database: sessions survive restarts
    # and every node sharing the database signs alike.
    app.config["SECRET_KEY"] = app.config.get("HYPERLAB_SECRET_KEY") or db.server_secret("session-key")

    manager = LabManager(data_dir=app.config["HYPERLAB_DATA_DIR"], max_labs=app.config["HYPERLAB_MAX_LABS"],
                         idle_s=app.config["HYPERLAB_IDLE_MINUTES"] * 60)
    app.extensions["hyperlab.labs"] = manager
    atexit.register(manager.shutdown)
    identity.init_app(app, db)

    from hyperlab.web import access, api, classroom_pages, dashboard_pages, pages, streams
    from hyperlab.web.api.lessons import LessonLibrary

    # Lessons are parsed on first use (and again when a file changes).
    app.extensions["hyperlab.lesson_library"] = LessonLibrary(app.config["HYPERLAB_LESSONS_DIR"])

    access.init_app(app)
    api.init_app(app)
    streams.init_app(app)
    pages.init_app(app)
    classroom_pages.init_app(app)
    dashboard_pages.init_app(app)
    return app


def lab_manager(app: Flask) -> LabManager:
    """The app's lab registry (one per web process)."""
    return app.extensions["hyperlab.labs"]
