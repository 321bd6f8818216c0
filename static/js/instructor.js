// /instructor: sign in with the trainer's secret, make classes, watch the roster as a heat map of
// students × steps (polled every few seconds), run a lesson in lockstep, reset a student's lab, export CSV.
// Everything goes through the REST API (docs/api.md, "Classes and instructors"); data is put into the page
// as text only, never as HTML (display names are the students' own).
import { request } from "./api.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 3000;
const lessons = new Map(); // id -> {id, title, steps: [{id, title}]}
let timer = null;

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function status(text) {
  $("status").textContent = text;
}

async function loadLessons() {
  const list = await request("GET", "/api/lessons");
  const box = $("class-lessons");
  box.querySelectorAll("label").forEach((n) => n.remove());
  for (const summary of list.lessons) {
    const { lesson } = await request("GET", `/api/lessons/${encodeURIComponent(summary.id)}`);
    lessons.set(lesson.id, { id: lesson.id, title: lesson.title, steps: lesson.steps.map((s) => ({ id: s.id, title: s.title })) });
    box.append(el("label", {}, el("input", { type: "checkbox", name: "lessons", value: lesson.id }), ` ${lesson.title}`));
  }
}

function lockstepControls(klass, lessonId, released) {
  const lesson = lessons.get(lessonId);
  const path = `/api/classes/${encodeURIComponent(klass.id)}/lockstep/${encodeURIComponent(lessonId)}`;
  const set = async (value) => {
    try {
      await request("PUT", path, { released: value });
      await refresh();
    } catch (err) {
      status(err.message);
    }
  };
  const box = el("p", { class: "lockstep" });
  const steps = lesson ? lesson.steps.length : 0;
  if (released === undefined) {
    box.append(`${lesson ? lesson.title : lessonId}: each student at their own pace. `,
      el("button", { type: "button", onclick: () => set(0) }, "Lockstep from step 1"));
  } else {
    box.append(`${lesson ? lesson.title : lessonId}: released up to step ${released + 1} of ${steps}. `);
    if (released + 1 < steps) {
      box.append(el("button", { type: "button", class: "primary", onclick: () => set(released + 1) },
        `Release step ${released + 2}`), " ");
    }
    box.append(el("button", { type: "button", onclick: () => set(null) }, "End lockstep"));
  }
  return box;
}

function heatMap(klass, roster) {
  const table = el("table", { class: "heatmap" });
  const head = el("tr", {}, el("th", { scope: "col" }, "Student"), el("th", { scope: "col" }, "Lab"));
  for (const lessonId of klass.lessons) {
    const lesson = lessons.get(lessonId);
    (lesson ? lesson.steps : []).forEach((step, i) => {
      head.append(el("th", { scope: "col", title: `${lesson.title}: ${step.title}` }, `${i + 1}`));
    });
  }
  head.append(el("th", { scope: "col" }, ""));
  table.append(el("thead", {}, head));
  const body = el("tbody");
  for (const student of roster.students) {
    const row = el("tr", { "data-student": student.student },
      el("th", { scope: "row" }, student.display_name || student.student),
      el("td", { class: `lab-${student.lab}` }, student.lab));
    for (const lessonId of klass.lessons) {
      const lesson = lessons.get(lessonId);
      const mine = student.lessons[lessonId] || { completed: [], current_step: null };
      (lesson ? lesson.steps : []).forEach((step, i) => {
        const done = mine.completed.includes(step.id);
        const here = mine.current_step === i;
        const cell = el("td", { class: done ? "done" : here ? "current" : "todo",
          title: `${student.display_name}: ${step.title} — ${done ? "done" : here ? "working on it" : "not yet"}` },
        done ? "✓" : here ? "●" : "");
        row.append(cell);
      });
    }
    const reset = el("button", { type: "button", disabled: student.lab === "none",
      onclick: async () => {
        try {
          await request("POST", `/api/classes/${encodeURIComponent(klass.id)}/students/${encodeURIComponent(student.student)}/lab/restart`);
          status(`${student.display_name}'s lab was reset.`);
        } catch (err) {
          status(err.message);
        }
      } }, "Reset lab");
    row.append(el("td", {}, reset));
    body.append(row);
  }
  table.append(body);
  return table;
}

async function renderClass(klass) {
  const roster = await request("GET", `/api/classes/${encodeURIComponent(klass.id)}/roster`);
  const section = el("section", { class: "panel class", "data-class": klass.id, "aria-label": klass.name });
  section.append(
    el("h2", {}, klass.name),
    el("p", {}, "Join code ", el("strong", { class: "join-code" }, klass.join_code),
      ` — students open ${location.origin}/join`),
    el("p", {}, el("a", { href: `/instructor/classes/${encodeURIComponent(klass.id)}`, class: "button" },
      "Live dashboard"), " (spectate, take over, message, projector view)"),
    el("p", {}, el("a", { href: `/api/classes/${encodeURIComponent(klass.id)}/progress.csv`, class: "button",
      download: "" }, "Export progress (CSV)"), ` ${roster.students.length} student(s)`),
  );
  for (const lessonId of klass.lessons) section.append(lockstepControls(klass, lessonId, roster.class.lockstep[lessonId]));
  section.append(heatMap(roster.class, roster));
  return section;
}

async function refresh() {
  const { classes } = await request("GET", "/api/classes");
  const rendered = await Promise.all(classes.map(renderClass));
  $("classes").replaceChildren(...rendered);
}

async function showDashboard() {
  $("sign-in").hidden = true;
  $("dashboard").hidden = false;
  await loadLessons();
  await refresh();
  clearInterval(timer);
  timer = setInterval(() => refresh().catch((err) => status(err.message)), POLL_MS);
}

async function main() {
  let role = null;
  try {
    role = (await request("GET", "/api/session")).role;
  } catch {
    role = null; // no session yet
  }
  if (role === "instructor") {
    await showDashboard();
  } else {
    $("sign-in").hidden = false;
  }
  $("sign-in").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("sign-in-error").textContent = "";
    try {
      await request("POST", "/api/instructor/sign-in", { secret: $("secret").value });
      $("secret").value = "";
      await showDashboard();
    } catch (err) {
      $("sign-in-error").textContent = err.message;
    }
  });
  $("new-class").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("new-class-error").textContent = "";
    const chosen = [...document.querySelectorAll('#class-lessons input[name="lessons"]:checked')].map((n) => n.value);
    try {
      await request("POST", "/api/classes", { name: $("class-name").value, lessons: chosen });
      $("class-name").value = "";
      document.querySelectorAll('#class-lessons input[name="lessons"]').forEach((n) => { n.checked = false; });
      await refresh();
    } catch (err) {
      $("new-class-error").textContent = err.message;
    }
  });
  $("sign-out").addEventListener("click", async () => {
    await request("POST", "/api/instructor/sign-out");
    clearInterval(timer);
    $("dashboard").hidden = true;
    $("sign-in").hidden = false;
  });
}

main().catch((err) => status(err.message));
