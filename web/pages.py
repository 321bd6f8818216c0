"""HTML pages. The manager page is a static shell: the ES modules in ``static/js`` fetch the session's
lab from the REST API and keep it live from the telemetry WebSocket, so there is no server-side
templating of lab state (one source of truth: the API the Python client also uses).
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from flask import Flask, Response, make_response

from hyperlab.web import identity
from hyperlab.web.access import HttpError

_SETTINGS_DIALOG = """  <dialog id="settings-dialog" aria-labelledby="settings-title" aria-describedby="settings-when">
    <form method="dialog" id="settings-form">
      <h2 id="settings-title">Settings</h2>
      <p id="settings-when" class="hint">Changes take effect at the next start.</p>
      <div class="field">
        <label for="settings-memory">Memory (MiB)</label>
        <input type="number" id="settings-memory" name="memory_mb" min="4" max="256" step="2" required
               aria-describedby="settings-memory-hint">
        <span id="settings-memory-hint" class="hint">an even number from 4 to 256</span>
      </div>
      <div class="field field-check" id="settings-ic-field">
        <input type="checkbox" id="settings-ic" name="integration_services" aria-describedby="settings-ic-hint">
        <label for="settings-ic">Integration Services</label>
        <span id="settings-ic-hint" class="hint">VMBus drivers: synthetic disk and console, heartbeat, shutdown
          and time sync. Without them the guest uses the emulated IDE disk and UART.</span>
      </div>
      <p id="settings-root-note" class="hint" hidden>The root partition hosts the Integration Services;
        it has no such setting.</p>
      <p id="settings-error" class="error" role="alert"></p>
      <div class="buttons">
        <button type="button" id="settings-cancel">Cancel</button>
        <button type="submit" id="settings-save" class="primary">Save</button>
      </div>
    </form>
  </dialog>
"""

# The top bar (lab id, design, telemetry link) and the lab-stopped banner of both pages.
_TOPBAR = """  <header class="topbar">
    <h1>__HEADING__</h1>
    <dl class="labinfo">
      <dt>Lab</dt><dd id="lab-id">…</dd>
      <dt>Design</dt><dd id="lab-design">…</dd>
      <dt>Telemetry</dt><dd id="link-state" class="link link-connecting">connecting</dd>
    </dl>
  </header>

  <div class="lab-status" role="region" aria-label="Lab status">
  <div id="stopped-banner" class="banner" role="alert" hidden>
    <strong>Lab stopped.</strong> <span id="stopped-text">The lab process is no longer running.</span>
    <button type="button" id="restart-lab" class="primary">Restart lab</button>
  </div>
  <p id="status" class="status" role="status" aria-live="polite"></p>
  </div>
"""

# The design panel (static/js/designs.js fills it): design switch, architecture, trusted code, faults.
_DESIGNS_PANEL = """    <section id="designs-panel" class="panel designs" aria-label="Design"></section>
"""

_HOME_HEADING = 'hyperlab <span class="sub">Hyper-V Manager</span>'
_LESSON_HEADING = '<a href="/" class="home-link">hyperlab</a> <span class="sub">Lesson: __TITLE__</span>'

# The counters table and recent transitions, inside the counters panel of both pages.
_COUNTERS_TABLE = """        <p class="hint counters-how">The partition selected in the Partitions table: click its row, or Tab to
          it and press Enter, to see another one's.</p>
        <div class="counters-scroll" tabindex="0" role="region" aria-label="Counters table (scrolls)">
          <table id="counters">
            <caption class="visually-hidden">Live telemetry counters of the selected partition</caption>
            <thead><tr><th scope="col">Counter</th><th scope="col" class="num">Value</th>
              <th scope="col" class="num"><abbr title="per second">/s</abbr></th></tr></thead>
            <tbody></tbody>
          </table>
        </div>
"""

# Recent transitions: filterable, pausable, measured and modelled figures in their own columns.
_TRANSITIONS = """        <div class="transitions-panel" role="group" aria-labelledby="transitions-title">
          <h3 id="transitions-title">Recent transitions</h3>
          <div class="transitions-tools">
            <label for="transitions-partition">Partition</label>
            <select id="transitions-partition"><option value="">all</option></select>
            <label for="transitions-kind">Kind</label>
            <select id="transitions-kind"><option value="">all kinds</option></select>
            <button type="button" id="transitions-pause" aria-pressed="false">Pause list</button>
          </div>
          <p id="transitions-summary" class="hint transitions-summary" aria-live="off"></p>
          <div class="transitions-scroll" tabindex="0" role="region" aria-label="Recent transitions (scrolls)">
            <table id="transitions" class="transitions">
              <caption class="visually-hidden">Recent transitions, newest first: each hop recorded by the code
                that made it, with its time measured in this emulator and its cost modelled for real hardware</caption>
              <thead><tr><th scope="col" class="num">t (s)</th><th scope="col">Partition</th><th scope="col">Hop</th>
                <th scope="col">Reason</th><th scope="col" class="num">Measured here (µs)</th>
                <th scope="col" class="num"><span class="modelled">Modelled</span> real hardware (cycles)</th></tr></thead>
              <tbody></tbody>
            </table>
          </div>
        </div>
"""

# The I/O side-by-side table (io.js), on both pages.
_IO_BODY = """        <div class="io-pick">
          <label for="io-left">Compare</label> <select id="io-left"></select>
          <label for="io-right">with</label> <select id="io-right"></select>
        </div>
        <div class="io-scroll" tabindex="0" role="region" aria-label="I/O figures (scrolls)">
          <table id="io">
            <caption class="visually-hidden">I/O of two partitions side by side: counts since the lab started
              and rates per second over the last seconds</caption>
            <thead>
              <tr>
                <th scope="col" rowspan="2" class="io-figure">Figure</th>
                <th scope="colgroup" colspan="2" class="io-side" data-side="left">—</th>
                <th scope="colgroup" colspan="2" class="io-side" data-side="right">—</th>
              </tr>
              <tr>
                <th scope="col" class="num" title="total since the lab started">count</th>
                <th scope="col" class="num" title="per second, over the last 2 s"><abbr title="per second">/s</abbr></th>
                <th scope="col" class="num" title="total since the lab started">count</th>
                <th scope="col" class="num" title="per second, over the last 2 s"><abbr title="per second">/s</abbr></th>
              </tr>
            </thead>
          </table>
        </div>
        <p class="io-legend"><strong>count</strong>: total since the lab started ·
          <strong>/s</strong>: rate over the last 2 s, computed in this browser from the counters ·
          MB = 10<sup>6</sup> bytes · — not reported ·
          <span class="modelled">modelled (real hardware)</span>: published costs on real CPUs, not measured here</p>
"""

# The lab's partitions table and consoles: the same on the manager page and beside a lesson.
_LAB_PANELS = """    <section class="panel partitions" aria-labelledby="partitions-title">
      <h2 id="partitions-title" tabindex="-1">Partitions</h2>
      <div class="table-scroll">
      <table id="partitions" class="__TABLE_CLASS__">
        <caption class="visually-hidden">Partitions of this lab, their state, live counters and actions</caption>
        <thead>
          <tr>
            <th scope="col">Name</th><th scope="col">Role</th><th scope="col">State</th>
            <th scope="col">Heartbeat</th><th scope="col" class="num">Uptime</th><th scope="col" class="num">Exits</th>
            <th scope="col" class="num">Syscalls</th><th scope="col" class="num">Interrupts</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody></tbody>
      </table>
      </div>
    </section>

    <section class="panel consoles" aria-labelledby="consoles-title">
      <div class="consoles-head">
        <h2 id="consoles-title">Consoles</h2>
        <div class="console-prefs">
          <label>Text size <select class="term-font-size">
            <option value="12">12 px</option><option value="14" selected>14 px</option><option value="16">16 px</option>
            <option value="18">18 px</option><option value="20">20 px</option><option value="24">24 px</option>
          </select></label>
          <label>Theme <select class="term-theme">
            <option value="dark" selected>Dark</option><option value="light">Light</option>
            <option value="contrast">High contrast</option>
          </select></label>
          <label class="sr-toggle"><input type="checkbox" class="screen-reader-mode"> Screen reader mode</label>
        </div>
      </div>
      <div id="console-tabs" class="tabs" role="tablist" aria-label="Open consoles"></div>
      <div id="console-panes" class="console-panes">
        <p class="empty">Press <em>Connect</em> on a partition to open its console.</p>
      </div>
    </section>
"""

_MANAGER_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>hyperlab — lessons and free lab</title>
  <link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/static/vendor/xterm/xterm.css">
  <link rel="stylesheet" href="/static/css/hyperlab.css">
  <link rel="stylesheet" href="/static/css/designs.css">
  __CATALOGUE__
  <script type="module" src="/static/js/main.js"></script>
  <script type="module" src="/static/js/lessonlist.js"></script>
  <script type="module" src="/static/js/notices.js"></script>
</head>
<body>
  <a class="skip" href="#lessons-title">Skip to lessons</a>
  <a class="skip" href="#partitions-title">Skip to the free lab</a>
__TOPBAR_HOME__

  <section class="panel lessons-home" aria-labelledby="lessons-title">
    <h2 id="lessons-title" tabindex="-1">Lessons</h2>
    <p class="hint">Step-through experiments on your own live partitions: each step unlocks when the
      hypervisor confirms it happened.</p>
    <ul id="lesson-list" class="lesson-cards" aria-busy="true"><li class="empty">Loading lessons…</li></ul>
    <details id="lesson-errors" class="lesson-errors" hidden>
      <summary>Some lesson files could not be loaded</summary>
      <ul></ul>
    </details>
  </section>

  <main class="layout" aria-labelledby="free-lab-title">
    <h2 class="free-lab-title" id="free-lab-title">Free lab <span class="sub">— the Hyper-V Manager view of your partitions</span></h2>
__LAB_PANELS_WIDE__

    <aside class="side">
      <section class="panel io" aria-labelledby="io-title">
        <h2 id="io-title">I/O <span class="sub">side by side</span></h2>
__IO_BODY__
      </section>

      <section class="panel counters" aria-labelledby="counters-title">
        <h2 id="counters-title">Counters <span id="counters-of" class="sub"></span></h2>
__COUNTERS_TABLE__
__TRANSITIONS__
      </section>
    </aside>
  </main>
__DESIGNS_PANEL__
__SETTINGS_DIALOG__</body>
</html>
"""



_LESSON_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>__TITLE__ — hyperlab lesson</title>
  <link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/static/vendor/xterm/xterm.css">
  <link rel="stylesheet" href="/static/css/hyperlab.css">
  <link rel="stylesheet" href="/static/css/designs.css">
  __CATALOGUE__
  <script type="module" src="/static/js/lesson.js"></script>
  <script type="module" src="/static/js/notices.js"></script>
</head>
<body class="lesson-page" data-lesson="__ID__">
  <a class="skip" href="#step-title">Skip to the current step</a>
  <a class="skip" href="#partitions-title">Skip to the partitions</a>
__TOPBAR_LESSON__

  <main class="lesson-layout">
    <section class="panel lesson-pane" aria-labelledby="lesson-title">
      <div class="lesson-head">
        <h2 id="lesson-title">__TITLE__</h2>
        <div class="lesson-progress">
          <progress id="lesson-progress" max="1" value="0" aria-labelledby="lesson-progress-text"></progress>
          <span id="lesson-progress-text">…</span>
        </div>
      </div>
      <div class="lesson-scroll" id="lesson-scroll">
      <details class="lesson-intro" id="lesson-intro">
        <summary>About this lesson</summary>
        <div class="objectives-box"><h3>Objectives</h3><ul id="lesson-objectives"></ul></div>
        <div id="lesson-intro-text" class="md"></div>
      </details>
      <nav aria-label="Steps of this lesson"><ol id="step-list" class="step-list"></ol></nav>
      <article id="step" class="step" aria-labelledby="step-title" aria-busy="true">
        <h3 id="step-title" tabindex="-1">Setting up the lab for this lesson…</h3>
        <div id="step-text" class="md"></div>
        <aside id="step-watch" class="watch" aria-labelledby="step-watch-title" hidden>
          <h4 id="step-watch-title">Watch</h4>
          <p id="step-watch-where"></p>
          <table id="step-watch-counters">
            <caption class="visually-hidden">The counters this step is about, live</caption>
            <tbody></tbody>
          </table>
        </aside>
        <div id="step-actions" class="step-actions" hidden></div>
        <form id="prediction" class="prediction" hidden>
          <p class="prediction-q"><label for="prediction-value" id="prediction-question"></label></p>
          <div class="prediction-row">
            <input type="number" id="prediction-value" step="any" required inputmode="decimal">
            <span id="prediction-unit"></span>
            <button type="submit" id="prediction-commit" class="primary">Commit prediction</button>
          </div>
          <p id="prediction-result" class="prediction-result"></p>
          <p id="prediction-explain" class="prediction-explain" hidden></p>
        </form>
        <div id="check" class="check" role="status" aria-live="polite" aria-atomic="true"></div>
        <p id="lesson-complete" class="lesson-complete" hidden>Lesson complete: every step was confirmed by the
          hypervisor's own counters. Review any step above, or press <strong>Finish</strong> to go back to the lessons.</p>
        <div class="hints" id="hints">
          <ol id="hint-list" class="hint-list"></ol>
          <button type="button" id="hint-button" hidden>Show a hint</button>
        </div>
        <div id="cells" class="cells"></div>
      </article>
      </div>
      <div class="step-nav">
        <button type="button" id="prev-step">← Previous</button>
        <button type="button" id="reset-lesson" class="quiet">Start over</button>
        <button type="button" id="next-step" class="primary" disabled aria-describedby="check">Next →</button>
      </div>
    </section>

    <div class="lesson-lab">
__LAB_PANELS_COMPACT__

      <section class="panel instruments" aria-label="What to watch: counters, transitions, I/O">
        <div id="instrument-tabs" class="tabs instrument-tabs" role="tablist" aria-label="Lab panels">
          <button type="button" role="tab" id="tab-counters" aria-controls="panel-counters" aria-selected="true"
                  data-panel="counters">Counters <span id="counters-of" class="sub"></span></button>
          <button type="button" role="tab" id="tab-transitions" aria-controls="panel-transitions"
                  aria-selected="false" tabindex="-1" data-panel="transitions">Transitions</button>
          <button type="button" role="tab" id="tab-io" aria-controls="panel-io" aria-selected="false" tabindex="-1"
                  data-panel="io">I/O side by side</button>
        </div>
        <div role="tabpanel" id="panel-counters" class="instrument counters" aria-labelledby="tab-counters">
__COUNTERS_TABLE__
        </div>
        <div role="tabpanel" id="panel-transitions" class="instrument" aria-labelledby="tab-transitions" hidden>
__TRANSITIONS__
        </div>
        <div role="tabpanel" id="panel-io" class="instrument io" aria-labelledby="tab-io" hidden>
__IO_BODY__
        </div>
      </section>
__DESIGNS_PANEL__    </div>
  </main>

  <dialog id="setup-dialog" aria-labelledby="setup-title" aria-describedby="setup-what">
    <form method="dialog">
      <h2 id="setup-title">Set up your lab for this lesson?</h2>
      <p id="setup-what">This lesson needs your lab set up its own way. Opening it will change:</p>
      <ul id="setup-changes"></ul>
      <p class="hint">Every partition restarts: what runs in them now is lost. Their disks are kept, and so
        is your progress in every lesson.</p>
      <div class="buttons">
        <button type="submit" value="back" id="setup-back">Back to the home page</button>
        <button type="submit" value="open" id="setup-open" class="primary">Set up the lab and open the lesson</button>
      </div>
    </form>
  </dialog>
__SETTINGS_DIALOG__</body>
</html>
"""

#: Python modules the notebook cells can import (written into Pyodide's file system by the page):
#: URL path under /py/ -> the module's file in this package. Only pure, stdlib-only modules.
PY_MODULES = {
    "hyperlab/web/client.py": ("hyperlab.web", "client.py"),
    "hyperlab/core/vmbus/ring.py": ("hyperlab.core.vmbus", "ring.py"),
}

_CSP = ("default-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
#: The lesson page also compiles WebAssembly (Pyodide, from our own origin).
_LESSON_CSP = _CSP + "; script-src 'self' 'wasm-unsafe-eval'"


def _html(body: str, csp: str = _CSP, status: int = 200) -> Response:
    response = make_response(body, status)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    # Everything is same-origin: no CDN, no inline script; WebSockets back to this host only.
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _catalogue_json() -> str:
    """The counter catalogue (docs/telemetry.md, read by the lesson engine: one definition) as JSON data
    in the page, for the counters' descriptions and units. Data, not script: the CSP allows no inline script."""
    from hyperlab.web.lessons.counters import catalogue

    data = json.dumps([d.to_dict() for d in catalogue()], ensure_ascii=False)
    return ('<script type="application/json" id="counter-catalogue">' + data.replace("</", "<\\/") + "</script>")


def _fill(page: str, *, topbar: tuple[str, str], table_class: str) -> str:
    """A page with its shared parts put in (top bar, lab panels, counters, transitions, I/O, settings)."""
    marker, heading = topbar
    return (page.replace("__SETTINGS_DIALOG__", _SETTINGS_DIALOG)
            .replace(marker + "\n", _TOPBAR.replace("__HEADING__", heading))
            .replace("__CATALOGUE__", _catalogue_json())
            .replace("__COUNTERS_TABLE__\n", _COUNTERS_TABLE)
            .replace("__TRANSITIONS__\n", _TRANSITIONS)
            .replace("__IO_BODY__\n", _IO_BODY)
            .replace("__LAB_PANELS_WIDE__\n", _LAB_PANELS.replace("__TABLE_CLASS__", table_class))
            .replace("__LAB_PANELS_COMPACT__\n", _LAB_PANELS.replace("__TABLE_CLASS__", table_class))
            .replace("__DESIGNS_PANEL__", _DESIGNS_PANEL))


def manager_page() -> Response:
    """Home: the lessons with this student's progress, and the free lab (the Hyper-V Manager view).
    Starts the session (a lasting identity) so the first API call is already bound."""
    identity.start_session()
    return _html(_fill(_MANAGER_PAGE, topbar=("__TOPBAR_HOME__", _HOME_HEADING), table_class=""))


def lesson_page(lesson_id: str) -> Response:
    """One lesson beside the consoles and counters; ``static/js/lesson.js`` drives it through the API."""
    from hyperlab.web.api.lessons import lesson_library

    identity.start_session()
    try:
        lesson = lesson_library().get(lesson_id)
    except HttpError:
        body = ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>No such lesson</title>'
                '<link rel="stylesheet" href="/static/css/hyperlab.css"></head><body><main class="notfound">'
                f'<h1>No lesson {escape(lesson_id)}</h1><p><a href="/">Back to the lessons</a></p></main></body></html>')
        return _html(body, status=404)
    page = (_fill(_LESSON_PAGE, topbar=("__TOPBAR_LESSON__", _LESSON_HEADING), table_class="compact")
            .replace("__TITLE__", escape(lesson.title)).replace("__ID__", escape(lesson.id)))
    return _html(page, _LESSON_CSP)


def python_module(path: str) -> Response:
    """The source of a module notebook cells may import (``PY_MODULES``), e.g. the hyperlab client."""
    entry = PY_MODULES.get(path)
    if entry is None:
        raise HttpError(404, f"no such module: {path}")
    package, filename = entry
    from importlib import import_module

    source = (Path(import_module(package).__file__ or "").parent / filename).read_text(encoding="utf-8")
    response = make_response(source)
    response.headers["Content-Type"] = "text/x-python; charset=utf-8"
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def init_app(app: Flask) -> None:
    app.add_url_rule("/", "manager_page", manager_page)
    app.add_url_rule("/lessons/<lesson_id>", "lesson_page", lesson_page)
    app.add_url_rule("/py/<path:path>", "python_module", python_module)
