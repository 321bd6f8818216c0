// /instructor/classes/<id>: the class's live dashboard. One SSE stream brings the whole class view each
// time it changes (web/dashboard.py); rows are keyed by student and updated in place, as DOM text only —
// no terminal or canvas per student, so 100 students stay cheap. One xterm.js terminal opens on demand to
// spectate or take over one student's console (the console WebSocket of web/streams.py).
// Display names are the students' own: they go into the page as text, never as HTML.
import { followClassView, request, wsUrl } from "./api.js";

const $ = (id) => document.getElementById(id);
const classId = document.body.dataset.class;
const enc = encodeURIComponent;
const SYMBOL = { none: "", working: "●", stuck: "!", crashed: "✗", done: "✓", locked: "–" };
const MEANING = {
  none: "not begun", working: "working on it", stuck: "stuck", crashed: "lab crashed", done: "done",
  locked: "not released yet",
};

let view = null;
let headKey = "";
const rows = new Map(); // student id -> {tr, cells: [td], lab, thumb, pred}
const consoleState = { student: null, name: "", ws: null, term: null, takeOver: false };

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-") || key.startsWith("aria-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children);
  return node;
}

function status(text) {
  $("status").textContent = text;
}

async function act(what, fn) {
  try {
    await fn();
  } catch (err) {
    status(`${what}: ${err.message}`);
  }
}

// --- rendering -----------------------------------------------------------------------------------------------
function steps() {
  return view.lessons.flatMap((lesson) => lesson.steps.map((step, i) => ({ lesson, step, i })));
}

function renderHead() {
  const key = JSON.stringify(view.lessons);
  if (key === headKey) return;
  headKey = key;
  const groups = $("heat-groups");
  groups.replaceChildren(el("th", { colSpan: 2 }, ""));
  for (const lesson of view.lessons) {
    groups.append(el("th", { scope: "colgroup", colSpan: lesson.steps.length, class: "lesson-group" }, lesson.title));
  }
  groups.append(el("th", { colSpan: 3 }, ""));
  const head = $("heat-head");
  head.replaceChildren(el("th", { scope: "col" }, "Student"), el("th", { scope: "col" }, "Lab"));
  for (const { lesson, step, i } of steps()) {
    head.append(el("th", { scope: "col", class: "step", title: `${lesson.title}: ${step.title}` }, `${i + 1}`));
  }
  head.append(el("th", { scope: "col" }, "Prediction / measured"), el("th", { scope: "col" }, "Console"),
    el("th", { scope: "col" }, "Actions"));
  for (const row of rows.values()) row.tr.remove();
  rows.clear();
}

function makeRow(student) {
  const tr = el("tr", { "data-student": student.student });
  const name = el("th", { scope: "row" });
  const lab = el("td", { class: "lab" });
  const cells = steps().map(() => el("td", { class: "hm" }));
  const pred = el("td", { class: "pred num" });
  const thumb = el("pre", { class: "thumb" });
  const watch = el("button", { type: "button", class: "row-watch" }, "Watch");
  watch.addEventListener("click", () => openConsole(student.student, false));
  const reset = el("button", { type: "button", class: "row-reset" }, "Reset lab");
  reset.addEventListener("click", () => act("Reset", async () => {
    const who = rows.get(student.student).name;
    if (!confirm(`Reset ${who}'s lab? Every partition restarts (disks are kept).`)) return;
    await request("POST", `/api/classes/${enc(classId)}/students/${enc(student.student)}/lab/restart`);
    status(`${who}'s lab was reset.`);
  }));
  const message = el("button", { type: "button", class: "row-message" }, "Message");
  message.addEventListener("click", () => {
    $("message-to").value = student.student;
    $("message-text").focus();
  });
  tr.append(name, lab, ...cells, pred, el("td", { class: "thumb-cell" }, thumb),
    el("td", { class: "actions" }, watch, reset, message));
  $("heat-body").append(tr);
  const row = { tr, nameCell: name, cells, lab, thumb, pred, name: "" };
  rows.set(student.student, row);
  return row;
}

function fmt(n) {
  return n === null || n === undefined ? "–" : Number.isInteger(n) ? String(n) : n.toFixed(2);
}

function renderRow(student) {
  const row = rows.get(student.student) || makeRow(student);
  row.name = student.display_name || student.student;
  row.nameCell.textContent = row.name;
  const labText = student.lab.state === "none" ? "no lab" : student.lab.state;
  const crashed = Object.entries(student.lab.partitions || {}).filter(([, s]) => s === "crashed").map(([n]) => n);
  row.lab.textContent = crashed.length ? `${labText} (${crashed.join(", ")} crashed)` : labText;
  row.lab.className = `lab lab-${student.lab.state}`;
  steps().forEach(({ lesson, step }, k) => {
    const index = lesson.steps.indexOf(step);
    const state = (student.cells[lesson.id] || [])[index] || "none";
    const cell = row.cells[k];
    cell.className = `hm hm-${state}`;
    cell.textContent = SYMBOL[state];
    cell.title = `${row.name}: ${step.title} — ${MEANING[state]}`;
    cell.setAttribute("aria-label", `${step.title}: ${MEANING[state]}`);
  });
  const p = student.last_prediction;
  row.pred.textContent = p ? `${fmt(p.prediction)} / ${fmt(p.measured)}` : "–";
  row.pred.title = p ? `${p.lesson}, step ${p.step}: predicted ${fmt(p.prediction)}, measured ${fmt(p.measured)}` : "";
  const t = student.lab.thumbnail;
  row.thumb.textContent = t ? `${t.partition}: ${t.lines.join("\n")}` : "";
  row.thumb.hidden = !t;
}

function renderLockstep() {
  const box = $("lockstep");
  box.replaceChildren();
  for (const lesson of view.lessons) {
    const released = view.class.lockstep[lesson.id];
    const path = `/api/classes/${enc(classId)}/lockstep/${enc(lesson.id)}`;
    const set = (value) => act("Lockstep", () => request("PUT", path, { released: value }));
    const line = el("p", { class: "lockstep", "data-lesson": lesson.id });
    if (released === undefined) {
      const start = el("button", { type: "button" }, "Lockstep from step 1");
      start.addEventListener("click", () => set(0));
      line.append(`${lesson.title}: each student at their own pace. `, start);
    } else {
      line.append(`${lesson.title}: released up to step ${released + 1} of ${lesson.steps.length}. `);
      if (released + 1 < lesson.steps.length) {
        const next = el("button", { type: "button", class: "primary" }, `Release step ${released + 2}`);
        next.addEventListener("click", () => set(released + 1));
        line.append(next, " ");
      }
      const end = el("button", { type: "button" }, "End lockstep");
      end.addEventListener("click", () => set(null));
      line.append(end);
    }
    box.append(line);
  }
  if (!view.lessons.length) box.append(el("p", { class: "hint" }, "This class has no lessons."));
}

function renderMessageTargets() {
  const select = $("message-to");
  const chosen = select.value;
  const options = [el("option", { value: "" }, "the whole class")];
  for (const s of view.students) options.push(el("option", { value: s.student }, s.display_name || s.student));
  select.replaceChildren(...options);
  select.value = view.students.some((s) => s.student === chosen) ? chosen : "";
}

function render(next) {
  view = next;
  renderHead();
  const seen = new Set();
  for (const student of view.students) {
    seen.add(student.student);
    renderRow(student);
  }
  for (const [id, row] of rows) {
    if (!seen.has(id)) {
      row.tr.remove();
      rows.delete(id);
    }
  }
  // rows in the view's order (by name)
  for (const student of view.students) $("heat-body").append(rows.get(student.student).tr);
  $("roster-count").textContent = `${view.students.length} joined, stuck after ${fmt(view.stuck_minutes)} min`;
  $("empty-roster").hidden = view.students.length > 0;
  renderLockstep();
  renderMessageTargets();
}

function legend() {
  const box = $("legend");
  for (const state of ["none", "working", "stuck", "crashed", "done", "locked"]) {
    box.append(el("span", { class: `hm hm-${state} key` }, SYMBOL[state] || " "), ` ${MEANING[state]} `);
  }
}

// --- the console: spectate or take over ------------------------------------------------------------------------
let xterm = null;

async function terminal() {
  if (consoleState.term) return consoleState.term;
  xterm ??= import("/static/vendor/xterm/xterm.mjs");
  const { Terminal } = await xterm;
  const term = new Terminal({ fontSize: 13, rows: 18, cols: 90, convertEol: false, cursorBlink: false });
  term.open($("console-term"));
  term.onData((data) => {
    const ws = consoleState.ws;
    if (consoleState.takeOver && ws && ws.readyState === WebSocket.OPEN) ws.send(data);
  });
  consoleState.term = term;
  return term;
}

function closeSocket() {
  if (consoleState.ws) {
    consoleState.ws.onclose = null;
    consoleState.ws.close();
    consoleState.ws = null;
  }
}

async function openConsole(student, takeOver) {
  const row = rows.get(student);
  consoleState.student = student;
  consoleState.name = row ? row.name : student;
  $("console-panel").hidden = false;
  $("console-who").textContent = consoleState.name;
  await connectConsole(takeOver);
  $("console-panel").scrollIntoView({ block: "nearest" });
}

async function connectConsole(takeOver) {
  closeSocket();
  const term = await terminal();
  term.reset();
  const partition = $("console-partition").value;
  consoleState.takeOver = takeOver;
  const path = `/ws/classes/${enc(classId)}/students/${enc(consoleState.student)}/partitions/${enc(partition)}/console`;
  const ws = new WebSocket(wsUrl(path + (takeOver ? "?take_over=1" : "")));
  ws.binaryType = "arraybuffer";
  ws.onmessage = (event) => term.write(new Uint8Array(event.data));
  ws.onclose = (event) => {
    $("console-mode").textContent = `Disconnected from ${consoleState.name}'s ${partition}` +
      (event.reason ? `: ${event.reason}` : " (no lab running, or the lab stopped)");
    $("console-mode").className = "console-mode";
  };
  consoleState.ws = ws;
  $("console-mode").textContent = takeOver
    ? `Taking over ${consoleState.name}'s ${partition}: what you type goes to their console, and they see a banner.`
    : `Spectating ${consoleState.name}'s ${partition} (read-only).`;
  $("console-mode").className = takeOver ? "console-mode taking-over" : "console-mode";
  $("console-take-over").textContent = takeOver ? "Hand back" : "Take over";
  if (takeOver) term.focus();
}

function bindConsole() {
  $("console-spectate").addEventListener("click", () => connectConsole(false));
  $("console-take-over").addEventListener("click", () => connectConsole(!consoleState.takeOver));
  $("console-partition").addEventListener("change", () => connectConsole(consoleState.takeOver));
  $("console-reset").addEventListener("click", () => act("Reset", async () => {
    const partition = $("console-partition").value;
    await request("POST",
      `/api/classes/${enc(classId)}/students/${enc(consoleState.student)}/partitions/${enc(partition)}/reset`);
    status(`${consoleState.name}'s ${partition} was reset.`);
  }));
  $("console-close").addEventListener("click", () => {
    closeSocket();
    consoleState.takeOver = false;
    $("console-panel").hidden = true;
  });
}

// --- messages ---------------------------------------------------------------------------------------------------
function bindMessages() {
  $("message-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act("Message", async () => {
      const student = $("message-to").value || null;
      await request("POST", `/api/classes/${enc(classId)}/messages`, { text: $("message-text").value, student });
      const to = student ? rows.get(student).name : "the whole class";
      $("message-text").value = "";
      status(`Message sent to ${to}.`);
    });
  });
}

function main() {
  const url = `${location.origin}/join`;
  $("join-url").textContent = url;
  document.querySelectorAll(".join-url").forEach((n) => { n.textContent = url; });
  legend();
  bindConsole();
  bindMessages();
  followClassView(classId, render, $("link-state"));
}

main();
