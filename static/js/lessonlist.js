// Home page: the lessons, each with its objectives and this student's progress ("3/7 steps").
// Lesson files that failed to load are listed (file:line: message) for the instructor.

import { listLessons } from "./api.js";

const list = document.getElementById("lesson-list");
const errorsBox = document.getElementById("lesson-errors");

function card(lesson) {
  const li = document.createElement("li");
  li.className = "lesson-card";
  li.dataset.lesson = lesson.id;
  const h = document.createElement("h3");
  const a = document.createElement("a");
  a.href = lesson.url;
  a.textContent = lesson.title;
  h.append(a);
  const summary = document.createElement("p");
  summary.className = "summary";
  summary.textContent = lesson.summary;
  // the objectives fold away, so that the lessons do not push the free lab below the fold
  const more = document.createElement("details");
  more.className = "card-objectives";
  const moreSummary = document.createElement("summary");
  moreSummary.textContent = `Objectives (${(lesson.objectives || []).length})`;
  const objectives = document.createElement("ul");
  objectives.className = "objectives";
  objectives.setAttribute("aria-label", `Objectives of ${lesson.title}`);
  for (const text of lesson.objectives || []) {
    const item = document.createElement("li");
    item.textContent = text;
    objectives.append(item);
  }
  more.append(moreSummary, objectives);
  const p = lesson.progress || { completed: 0, total: lesson.steps };
  const progress = document.createElement("div");
  progress.className = "card-progress";
  const bar = document.createElement("progress");
  bar.max = p.total || 1;
  bar.value = p.completed || 0;
  bar.setAttribute("aria-hidden", "true");
  const label = document.createElement("span");
  label.className = "progress-text";
  label.textContent = `${p.completed}/${p.total} steps`;
  if (p.total && p.completed === p.total) label.textContent += " · done";
  progress.append(bar, label);
  const open = document.createElement("a");
  open.className = "button primary";
  open.href = lesson.url;
  open.textContent = !p.started ? "Start" : p.completed === p.total ? "Review" : "Continue";
  open.setAttribute("aria-label", `${open.textContent} ${lesson.title} (${label.textContent})`);
  li.append(h, summary, more, progress, open);
  return li;
}

async function load() {
  try {
    const { lessons, errors } = await listLessons();
    list.replaceChildren(...lessons.map(card));
    if (!lessons.length) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = "No lessons are installed on this server.";
      list.append(li);
    }
    errorsBox.hidden = !errors.length;
    errorsBox.querySelector("ul").replaceChildren(
      ...errors.map((text) => {
        const li = document.createElement("li");
        const code = document.createElement("code");
        code.textContent = text;
        li.append(code);
        return li;
      }),
    );
  } catch (err) {
    const li = document.createElement("li");
    li.className = "empty error";
    li.textContent = `Cannot list the lessons: ${err.message}`;
    list.replaceChildren(li);
  } finally {
    list.setAttribute("aria-busy", "false");
  }
}

load();
// Coming back with the browser's back button shows fresh progress.
window.addEventListener("pageshow", (event) => {
  if (event.persisted) load();
});
