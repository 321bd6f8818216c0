"""The classroom's two pages: ``/join`` (a student types the class code and a display name) and
``/instructor`` (sign in with the trainer's secret; classes, join codes, the roster as a live heat map,
lockstep, lab resets, the CSV export). Static shells like the other pages: ``static/js/join.js`` and
``static/js/instructor.js`` do everything through the REST API (docs/api.md, "Classes and instructors").
"""

from __future__ import annotations

from flask import Flask, Response

from hyperlab.web import identity
from hyperlab.web.pages import _html

_HEAD = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>__TITLE__</title>
  <link rel="stylesheet" href="/static/css/hyperlab.css">
  <link rel="stylesheet" href="/static/css/classroom.css">
  <script type="module" src="/static/js/__MODULE__.js"></script>
</head>
"""

_JOIN_PAGE = _HEAD.replace("__TITLE__", "Join a class — hyperlab").replace("__MODULE__", "join") + """<body>
<main class="classroom">
  <h1><a href="/" class="home-link">hyperlab</a> <span class="sub">Join a class</span></h1>
  <p id="current" class="hint" role="status" aria-live="polite"></p>
  <form id="join-form" class="classroom-form">
    <div class="field">
      <label for="join-code">Class code</label>
      <input id="join-code" name="code" autocomplete="off" autocapitalize="characters" spellcheck="false"
             maxlength="16" required aria-describedby="join-code-hint">
      <span id="join-code-hint" class="hint">six letters and digits, from your instructor</span>
    </div>
    <div class="field">
      <label for="join-name">Your name</label>
      <input id="join-name" name="display_name" autocomplete="nickname" maxlength="40" required
             aria-describedby="join-name-hint">
      <span id="join-name-hint" class="hint">as your instructor will see it; no e-mail, no password</span>
    </div>
    <p id="join-error" class="error" role="alert"></p>
    <button type="submit" class="primary">Join</button>
  </form>
</main>
</body>
</html>
"""

_INSTRUCTOR_PAGE = (_HEAD.replace("__TITLE__", "Instructor — hyperlab").replace("__MODULE__", "instructor")
                    + """<body>
<main class="classroom classroom-wide">
  <h1><a href="/" class="home-link">hyperlab</a> <span class="sub">Instructor</span></h1>
  <p id="status" class="hint" role="status" aria-live="polite"></p>
  <form id="sign-in" class="classroom-form" hidden>
    <div class="field">
      <label for="secret">Instructor secret</label>
      <input id="secret" name="secret" type="password" autocomplete="current-password" required>
    </div>
    <p id="sign-in-error" class="error" role="alert"></p>
    <button type="submit" class="primary">Sign in</button>
  </form>
  <div id="dashboard" hidden>
    <form id="new-class" class="classroom-form">
      <h2>New class</h2>
      <div class="field">
        <label for="class-name">Name</label>
        <input id="class-name" name="name" maxlength="120" required>
      </div>
      <fieldset id="class-lessons"><legend>Lessons</legend></fieldset>
      <p id="new-class-error" class="error" role="alert"></p>
      <button type="submit" class="primary">Create class</button>
    </form>
    <div id="classes"></div>
    <p><button type="button" id="sign-out">Sign out</button></p>
  </div>
</main>
</body>
</html>
""")


def join_page() -> Response:
    """Starts the session (the student's lasting identity) the join request will need."""
    identity.start_session()
    return _html(_JOIN_PAGE)


def instructor_page() -> Response:
    """No session is started here: signing in makes the instructor's own."""
    return _html(_INSTRUCTOR_PAGE)


def init_app(app: Flask) -> None:
    app.add_url_rule("/join", "join_page", join_page)
    app.add_url_rule("/instructor", "instructor_page", instructor_page)
