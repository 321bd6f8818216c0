"""The instructor's live pages: a class's dashboard (``/instructor/classes/<id>``) and its projector view
(``/instructor/classes/<id>/projector``). Static shells like the other pages: ``static/js/dashboard.js``
and ``static/js/projector.js`` follow the class's SSE stream (docs/api.md, "Dashboard"). Anyone but a
signed-in instructor is sent to ``/instructor`` (its sign-in form): the shells hold no class data, and the
API refuses students anyway.
"""

from __future__ import annotations

from html import escape

from flask import Flask, Response, redirect

from hyperlab.web.api.classes import INSTRUCTOR, class_store
from hyperlab.web.identity import current_identity
from hyperlab.web.pages import _html

_HEAD = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>__TITLE__ — hyperlab</title>
  <link rel="stylesheet" href="/static/css/hyperlab.css">
  <link rel="stylesheet" href="/static/css/dashboard.css">
__EXTRA__  <script type="module" src="/static/js/__MODULE__.js"></script>
</head>
"""

_DASHBOARD = """<body data-class="__ID__">
<header class="dash-top">
  <h1><a href="/instructor" class="home-link">Instructor</a> <span class="sub" id="class-name">__NAME__</span></h1>
  <p>Join code <strong class="join-code" id="join-code">__CODE__</strong> at <span id="join-url"></span></p>
  <nav class="dash-links" aria-label="Class">
    <a id="projector-link" href="/instructor/classes/__ID__/projector" target="_blank" rel="noopener">Projector view</a>
    <a id="export-link" href="/api/classes/__ID__/progress.csv" download>Export progress (CSV)</a>
    <span id="link-state" class="link link-connecting" role="status">connecting</span>
  </nav>
</header>
<main class="dash">
  <section class="panel" aria-labelledby="lockstep-title">
    <h2 id="lockstep-title">Lockstep</h2>
    <div id="lockstep"></div>
  </section>
  <section class="panel" aria-labelledby="roster-title">
    <h2 id="roster-title">Students <span class="sub" id="roster-count"></span></h2>
    <p class="legend" id="legend" aria-label="Legend"></p>
    <div class="heat-wrap"><table class="heat" id="heat">
      <thead><tr id="heat-groups"></tr><tr id="heat-head"></tr></thead><tbody id="heat-body"></tbody>
    </table></div>
    <p class="hint" id="empty-roster">No student has joined yet: they open <span class="join-url"></span> and type the code.</p>
  </section>
  <section class="panel" aria-labelledby="message-title">
    <h2 id="message-title">Message</h2>
    <form id="message-form" class="dash-form">
      <label for="message-to">To</label>
      <select id="message-to"><option value="">the whole class</option></select>
      <label for="message-text">Text</label>
      <input id="message-text" maxlength="500" required>
      <button type="submit" class="primary">Send</button>
    </form>
  </section>
  <section class="panel" id="console-panel" aria-labelledby="console-title" hidden>
    <h2 id="console-title">Console <span class="sub" id="console-who"></span></h2>
    <p id="console-mode" class="console-mode" role="status"></p>
    <div class="dash-form">
      <label for="console-partition">Partition</label>
      <select id="console-partition"><option>root</option><option selected>child1</option><option>child2</option></select>
      <button type="button" id="console-spectate">Spectate</button>
      <button type="button" id="console-take-over">Take over</button>
      <button type="button" id="console-reset">Reset this partition</button>
      <button type="button" id="console-close">Close</button>
    </div>
    <div id="console-term" class="dash-term"></div>
  </section>
  <p id="status" class="status" role="status" aria-live="polite"></p>
</main>
</body>
</html>
"""

_PROJECTOR = """<body data-class="__ID__" class="projector">
<main>
  <h1><span id="class-name">__NAME__</span> <span class="sub">join with <strong class="join-code">__CODE__</strong></span></h1>
  <span id="link-state" class="link link-connecting" role="status">connecting</span>
  <div id="projector"></div>
</main>
</body>
</html>
"""


def _instructor_class(class_id: str) -> Response | tuple[str, str, str]:
    me = current_identity()
    if me is None or me.role != INSTRUCTOR:
        return redirect("/instructor")
    klass = class_store().get(class_id)  # 404 for an unknown class
    return escape(klass.id), escape(klass.name), escape(klass.join_code)


def _page(template: str, title: str, module: str, class_id: str, extra: str = "") -> Response:
    found = _instructor_class(class_id)
    if isinstance(found, Response):
        return found
    cid, name, code = found
    head = _HEAD.replace("__TITLE__", f"{title}: {name}").replace("__MODULE__", module).replace("__EXTRA__", extra)
    return _html(head + template.replace("__ID__", cid).replace("__NAME__", name).replace("__CODE__", code))


def dashboard_page(class_id: str) -> Response:
    """The live dashboard: heat map, lab states, thumbnails, spectate/take over/reset/message, lockstep."""
    return _page(_DASHBOARD, "Dashboard", "dashboard", class_id,
                 '  <link rel="stylesheet" href="/static/vendor/xterm/xterm.css">\n')


def projector_page(class_id: str) -> Response:
    """The class's aggregate for a projector: no names, only counts and the spread of predictions."""
    return _page(_PROJECTOR, "Projector", "projector", class_id)


def init_app(app: Flask) -> None:
    app.add_url_rule("/instructor/classes/<class_id>", "dashboard_page", dashboard_page)
    app.add_url_rule("/instructor/classes/<class_id>/projector", "projector_page", projector_page)
