"""HTML pages. The manager page is a static shell: the ES modules in ``static/js`` fetch the session's
lab from the REST API and keep it live from the telemetry WebSocket, so there is no server-side
templating of lab state (one source of truth: the API the Python client also uses).
"""

from __future__ import annotations

from flask import Flask, Response, make_response

from hyperlab.web import access

_MANAGER_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>hyperlab — Hyper-V Manager</title>
  <link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/static/vendor/xterm/xterm.css">
  <link rel="stylesheet" href="/static/css/hyperlab.css">
  <script type="module" src="/static/js/main.js"></script>
</head>
<body>
  <a class="skip" href="#partitions-title">Skip to partitions</a>
  <header class="topbar">
    <h1>hyperlab <span class="sub">Hyper-V Manager</span></h1>
    <dl class="labinfo">
      <dt>Lab</dt><dd id="lab-id">…</dd>
      <dt>Design</dt><dd id="lab-design">…</dd>
      <dt>Telemetry</dt><dd id="link-state" class="link link-connecting">connecting</dd>
    </dl>
  </header>

  <div id="stopped-banner" class="banner" role="alert" hidden>
    <strong>Lab stopped.</strong> <span id="stopped-text">The lab process is no longer running.</span>
    <button type="button" id="restart-lab" class="primary">Restart lab</button>
  </div>
  <p id="status" class="status" role="status" aria-live="polite"></p>

  <main class="layout">
    <section class="panel partitions" aria-labelledby="partitions-title">
      <h2 id="partitions-title" tabindex="-1">Partitions</h2>
      <table id="partitions">
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
    </section>

    <section class="panel consoles" aria-labelledby="consoles-title">
      <h2 id="consoles-title">Consoles</h2>
      <div id="console-tabs" class="tabs" role="tablist" aria-label="Open consoles"></div>
      <div id="console-panes" class="console-panes">
        <p class="empty">Press <em>Connect</em> on a partition to open its console.</p>
      </div>
    </section>

    <aside class="side">
      <section class="panel io" aria-labelledby="io-title">
        <h2 id="io-title">I/O <span class="sub">side by side</span></h2>
        <div class="io-pick">
          <label for="io-left">Compare</label> <select id="io-left"></select>
          <label for="io-right">with</label> <select id="io-right"></select>
        </div>
        <div class="io-scroll">
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
      </section>

      <section class="panel counters" aria-labelledby="counters-title">
        <h2 id="counters-title">Counters <span id="counters-of" class="sub"></span></h2>
        <div class="counters-scroll">
          <table id="counters">
            <caption class="visually-hidden">Live telemetry counters of the selected partition</caption>
            <thead><tr><th scope="col">Counter</th><th scope="col" class="num">Value</th>
              <th scope="col" class="num"><abbr title="per second">/s</abbr></th></tr></thead>
            <tbody></tbody>
          </table>
        </div>
        <h3>Recent transitions</h3>
        <ol id="transitions" class="transitions"></ol>
      </section>
    </aside>
  </main>

  <dialog id="settings-dialog" aria-labelledby="settings-title" aria-describedby="settings-when">
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
</body>
</html>
"""


def manager_page() -> Response:
    """The Hyper-V Manager-style page; mints the session owner so the first API call is already bound."""
    access.owner_id()
    response = make_response(_MANAGER_PAGE)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    # Everything is same-origin: no CDN, no inline script; WebSockets back to this host only.
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def init_app(app: Flask) -> None:
    app.add_url_rule("/", "manager_page", manager_page)
