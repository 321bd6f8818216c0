// Lesson page: the step-through pane beside the live lab. Everything the pane shows about a step's
// progress comes from the server (GET /api/lessons/<id>/state, about once a second), which evaluates
// the step's check on the hypervisor's own state: "Next" unlocks only when the lab confirms it.

import {
  ApiError,
  commitPrediction,
  gotoStep,
  lessonSetup,
  lessonState,
  nextHint,
  openLesson,
  putSettings,
  resetLesson,
} from "./api.js";
import { Instruments } from "./instruments.js";
import { LabView } from "./labview.js";
import { renderInline, renderMarkdown } from "./markdown.js";
import { Cell } from "./notebook.js";

const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);
const lessonId = document.body.dataset.lesson;

const view = new LabView({ onSnapshot: (snapshot) => updateWatch(snapshot) });
const instruments = new Instruments($("instrument-tabs"));
const PANEL_NAMES = { counters: "Counters", transitions: "Transitions", io: "I/O side by side" };
let lesson = null;
let state = null;
let shownStep = null;
let pollTimer = null;
let reopening = false;
let busy = false;

function say(message, isError = false) {
  view.say(message, isError);
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

function formatValue(value, unit) {
  if (value === null || value === undefined) return "—";
  const text = typeof value === "number" ? value.toLocaleString("en-US", { maximumFractionDigits: 3 }) : String(value);
  return unit ? `${text} ${unit}` : text;
}

// --- rendering --------------------------------------------------------------------------------------
function renderLesson() {
  const objectives = $("lesson-objectives");
  objectives.replaceChildren(
    ...(lesson.objectives || []).map((text) => {
      const li = document.createElement("li");
      renderInline(text, li);
      return li;
    }),
  );
  renderMarkdown(lesson.intro || "", $("lesson-intro-text"));
}

function reachable(index) {
  return lesson.steps.slice(0, index).every((s) => state.completed.includes(s.id));
}

/** The step list: built once per lesson, then updated in place on every poll, so a focused step
 * button keeps keyboard focus (rebuilding it threw focus to <body> every second). */
function renderStepList() {
  const list = $("step-list");
  if (list.children.length !== lesson.steps.length) {
    list.replaceChildren(
      ...lesson.steps.map((step, index) => {
        const li = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.className = "step-link";
        button.textContent = `${index + 1}. ${step.title}`;
        button.addEventListener("click", () => {
          if (button.getAttribute("aria-disabled") !== "true") go(index);
        });
        li.append(button);
        return li;
      }),
    );
  }
  lesson.steps.forEach((step, index) => {
    const li = list.children[index];
    const button = li.firstElementChild;
    const done = state.completed.includes(step.id);
    const current = index === state.current;
    const cls = `${done ? "done" : ""} ${current ? "current" : ""}`.trim();
    if (li.className !== cls) li.className = cls;
    button.dataset.mark = done ? "✓" : current ? "▸" : "";
    const status = done ? "done" : reachable(index) ? "not done yet" : "locked";
    const label = `Step ${index + 1}: ${step.title} (${status})`;
    if (button.getAttribute("aria-label") !== label) button.setAttribute("aria-label", label);
    if (current) button.setAttribute("aria-current", "step");
    else button.removeAttribute("aria-current");
    // aria-disabled, not disabled: a focused button that becomes the current step keeps its focus
    const disabled = !reachable(index) || current;
    if (button.getAttribute("aria-disabled") !== String(disabled)) button.setAttribute("aria-disabled", String(disabled));
  });
}

function renderProgress() {
  const done = state.completed.length;
  const bar = $("lesson-progress");
  bar.max = state.total;
  bar.value = done;
  setText($("lesson-progress-text"), `Step ${state.current + 1} of ${state.total} · ${done}/${state.total} done`);
}

function actionButton(action) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = action.label;
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      if (action.fault || action.design) {
        // Through the design panel: the same confirmation, picture and result as its own controls.
        if (action.fault) await view.designs.askFault(action.fault);
        else await view.designs.askSwitch(action.design);
      } else if (action.action) {
        await view.action(action.partition, action.action);
      } else {
        await putSettings(view.currentLab, action.partition, action.settings || {});
        say(`${action.partition}: settings saved; they take effect at its next start.`);
      }
    } catch (err) {
      say(`${action.label}: ${err.message}`, true);
    } finally {
      button.disabled = false;
      poll(true);
    }
  });
  return button;
}

// --- commands in the text: a button beside each types it into the partition's console ---------------
function clickableCommands(step, container) {
  const commands = step.commands || [];
  if (!commands.length) return;
  for (const code of container.querySelectorAll("code")) {
    if (code.closest("pre")) continue;
    const mine = commands.filter((c) => c.text === code.textContent);
    if (!mine.length) continue;
    const group = document.createElement("span");
    group.className = "run-command";
    for (const c of mine) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "run-button";
      button.textContent = mine.length > 1 ? `▶ ${c.partition}` : "▶";
      button.setAttribute("aria-label", `Run ${c.text} in ${c.partition}`);
      button.title = `Type “${c.text}” and Enter into ${c.partition}'s console`;
      button.addEventListener("click", () => {
        say(`Typed “${c.text}” into ${c.partition}'s console.`);
        view.consoles.type(c.partition, c.text);
      });
      group.append(button);
    }
    code.after(group);
  }
}

// --- what the step asks the student to watch (the lesson's `watch:`) ---------------------------------
/** Show the step's panel and partition beside the consoles, and its counters (live) next to its text. */
function renderWatch(step) {
  const box = $("step-watch");
  const watch = step.watch;
  box.hidden = !watch;
  if (!watch) return;
  if (watch.partition) view.table.select(watch.partition);
  if (watch.panel) instruments.show(watch.panel);
  const where = $("step-watch-where");
  where.replaceChildren();
  if (watch.panel) {
    const show = document.createElement("button");
    show.type = "button";
    show.className = "link-button";
    show.textContent = `the ${PANEL_NAMES[watch.panel]} panel`;
    show.addEventListener("click", () => instruments.show(watch.panel, { focus: true }));
    where.append("Look at ", show, watch.partition ? ` of ${watch.partition}, beside the consoles.` : ", beside the consoles.");
  } else if (watch.partition) {
    where.append(`Look at ${watch.partition}.`);
  }
  where.hidden = !where.childNodes.length;
  const rows = (watch.counters || []).map((c) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.scope = "row";
    const code = document.createElement("code");
    code.textContent = c.name;
    th.append(code);
    if (c.short || c.meaning) {
      const meaning = document.createElement("span");
      meaning.className = "counter-meaning";
      meaning.textContent = c.short || c.meaning;
      if (c.meaning && c.meaning !== c.short) meaning.title = c.meaning;
      th.append(meaning);
    }
    const td = document.createElement("td");
    td.className = "num";
    td.dataset.counter = c.name;
    td.dataset.unit = c.unit || "";
    td.textContent = "—";
    tr.append(th, td);
    return tr;
  });
  $("step-watch-counters").tBodies[0].replaceChildren(...rows);
  $("step-watch-counters").hidden = !rows.length;
  if (view.lastSnapshot) updateWatch(view.lastSnapshot);
}

function updateWatch(snapshot) {
  const counters = snapshot.counters || {};
  for (const td of $("step-watch").querySelectorAll("td[data-counter]")) {
    setText(td, formatValue(counters[td.dataset.counter], td.dataset.unit));
  }
}

/** How far a prediction was from the measurement, in words. */
function predictionFeedback(predicted, measured) {
  if (typeof predicted !== "number" || typeof measured !== "number") return "";
  const diff = measured - predicted;
  if (diff === 0) return "Spot on.";
  const by = formatValue(Math.abs(diff));
  const rel = measured !== 0 ? ` (${Math.round((Math.abs(diff) / Math.abs(measured)) * 100)} % of the measurement)` : "";
  if (predicted > 0 && measured > 0 && (measured / predicted >= 10 || predicted / measured >= 10)) {
    const times = measured > predicted ? `about ${formatValue(Math.round(measured / predicted))} times`
      : `about 1/${formatValue(Math.round(predicted / measured))} of`;
    return `Off by ${by}${rel}: the measurement is ${times} your prediction.`;
  }
  return `Off by ${by}${rel}: ${diff > 0 ? "more" : "fewer"} than you predicted.`;
}

/** Build the step's static parts (text, actions, prediction form, cells) when the step changes. */
function renderStep(step, index, { focus }) {
  shownStep = step.id;
  $("step").dataset.step = step.id;
  setText($("step-title"), `${index + 1}. ${step.title}`);
  renderMarkdown(step.text, $("step-text"));
  clickableCommands(step, $("step-text"));

  const actions = $("step-actions");
  actions.replaceChildren(...(step.actions || []).map(actionButton));
  actions.hidden = !(step.actions || []).length;

  const form = $("prediction");
  form.hidden = !step.predict;
  if (step.predict) {
    $("prediction-question").replaceChildren();
    renderInline(step.predict.question, $("prediction-question"));
    setText($("prediction-unit"), step.predict.unit || "");
    $("prediction-value").value = "";
  }

  renderWatch(step);

  const cells = $("cells");
  cells.replaceChildren();
  (step.cells || []).forEach((source, i) => {
    const cell = new Cell(source, {
      label: `Python cell ${i + 1}`,
      storageKey: `hyperlab.cell.${lessonId}.${step.id}.${i}`,
      onRan: () => poll(true),
    });
    cells.append(cell.el);
  });
  $("check").textContent = "";
  $("hint-list").replaceChildren();
  if (focus) $("step-title").focus();
}

/** Update what changes while the student works: check, prediction, hints, navigation. */
function applyState(next, { focus = false } = {}) {
  state = next;
  const index = state.current;
  const step = lesson.steps[index];
  if (shownStep !== step.id) renderStep(step, index, { focus });
  $("step").setAttribute("aria-busy", "false");
  renderProgress();
  renderStepList();

  const s = state.step;
  const check = $("check");
  let text;
  let cls;
  if (!state.lab.alive) {
    text = "The lab is not running: restart it to go on.";
    cls = "check-wait";
  } else if (s.check.met) {
    text = s.has_check ? `✓ Done: ${s.check.message || "the check is met."}` : "✓ No check for this step: go on when you are ready.";
    cls = "check-met";
  } else {
    text = `Waiting for: ${s.check.message || "the step's check"}`;
    if (s.check.error) text += ` (${s.check.error})`;
    cls = "check-wait";
  }
  setText(check, text);
  check.className = `check ${cls}`;
  check.dataset.met = s.check.met ? "true" : "false";

  const p = s.prediction;
  if (p) {
    const input = $("prediction-value");
    const commit = $("prediction-commit");
    input.disabled = p.committed;
    commit.hidden = p.committed;
    if (p.committed && document.activeElement !== input) input.value = p.value;
    let result = "";
    if (p.revealed) {
      result = `Measured: ${formatValue(p.measured, p.unit)} — you predicted ${formatValue(p.value, p.unit)}. ${predictionFeedback(p.value, p.measured)}`;
    } else if (p.committed) {
      result = `Your prediction: ${formatValue(p.value, p.unit)}. Now do the experiment: the measurement appears here when the step's check is met.`;
    }
    setText($("prediction-result"), result);
    $("prediction-result").className = `prediction-result ${p.revealed ? "revealed" : ""}`;
    // the lesson author's explanation, once the measurement is known
    const explain = $("prediction-explain");
    const text = p.revealed ? step.predict?.explain || "" : "";
    if (explain.dataset.text !== text) {
      explain.dataset.text = text;
      explain.replaceChildren();
      if (text) renderInline(text, explain);
    }
    explain.hidden = !text;
  }

  const hintList = $("hint-list");
  if (hintList.children.length !== s.hints.shown.length) {
    hintList.replaceChildren(
      ...s.hints.shown.map((hint, i) => {
        const li = document.createElement("li");
        const label = document.createElement("strong");
        label.textContent = `Hint ${i + 1}: `;
        li.append(label);
        renderInline(hint, li);
        return li;
      }),
    );
  }
  const hintButton = $("hint-button");
  hintButton.hidden = s.hints.total === 0 || s.hints.shown.length >= s.hints.total;
  setText(hintButton, s.hints.shown.length ? `Show another hint (${s.hints.shown.length + 1} of ${s.hints.total})` : `Show a hint (1 of ${s.hints.total})`);

  const last = index === state.total - 1;
  const nextButton = $("next-step");
  setText(nextButton, last ? "Finish ✓" : "Next →");
  nextButton.disabled = last ? !state.finished : !s.can_next;
  $("prev-step").disabled = index === 0;
  document.body.classList.toggle("lesson-finished", state.finished);
  $("lesson-complete").hidden = !state.finished;
}

// --- talking to the server ----------------------------------------------------------------------------
async function go(index) {
  if (busy) return;
  busy = true;
  try {
    applyState(await gotoStep(lessonId, index), { focus: true });
    if (index > 0) $("lesson-intro").open = false; // the introduction was read: room for the step
  } catch (err) {
    say(err.message, true);
  } finally {
    busy = false;
  }
}

async function reopen() {
  if (reopening) return;
  reopening = true;
  try {
    say("The lab changed: setting it up for this lesson again…");
    const answer = await openLesson(lessonId);
    view.showDescription(answer.lab_description);
    applyState(answer);
    say(answer.lab_set_up ? "The lab was set up afresh for this lesson." : "The lab is ready for this lesson.");
  } catch (err) {
    say(`Cannot set up the lab: ${err.message}`, true);
  } finally {
    reopening = false;
  }
}

async function poll(soon = false) {
  clearTimeout(pollTimer);
  if (soon) await new Promise((resolve) => setTimeout(resolve, 150));
  try {
    if (!document.hidden && !busy) {
      const next = await lessonState(lessonId);
      if (!busy) applyState(next);
      // a new lab process (restarted, or a new lab after a server restart): set it up again if it must be
      if (!next.lab.set_up && (next.lab.alive || next.lab.id === null)) reopen();
    }
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 0) say(`Lesson state: ${err.message}`, true);
  } finally {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(() => poll(), POLL_MS);
  }
}

$("prev-step").addEventListener("click", () => go(state.current - 1));
$("next-step").addEventListener("click", () => {
  if (state.current === state.total - 1) {
    if (state.finished) {
      say("Lesson complete. Well done!");
      window.location.href = "/";
    }
    return;
  }
  go(state.current + 1);
});

$("prediction").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("prediction-value");
  const value = Number(input.value);
  if (input.value.trim() === "" || !Number.isFinite(value)) {
    say("Enter a number for your prediction.", true);
    input.focus();
    return;
  }
  try {
    applyState(await commitPrediction(lessonId, state.step.id, value));
    say(`Prediction committed: ${value}. The step's counters start from now.`);
  } catch (err) {
    say(err.message, true);
  }
});

$("hint-button").addEventListener("click", async () => {
  try {
    applyState(await nextHint(lessonId, state.step.id));
    const hints = $("hint-list").children;
    if (hints.length) hints[hints.length - 1].setAttribute("tabindex", "-1");
    if ($("hint-button").hidden && hints.length) hints[hints.length - 1].focus();
  } catch (err) {
    say(err.message, true);
  }
});

$("reset-lesson").addEventListener("click", async () => {
  if (!window.confirm("Start this lesson over? Your progress in it is forgotten and its lab is set up afresh.")) return;
  busy = true;
  say("Starting over: setting the lab up afresh…");
  try {
    shownStep = null;
    const answer = await resetLesson(lessonId);
    busy = false;
    applyState(answer, { focus: true });
    say("Started over.");
  } catch (err) {
    say(err.message, true);
  } finally {
    busy = false;
  }
});

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) poll();
});

/** Ask before a lesson changes the lab: say what will change (settings, reboots). True to go on. */
async function confirmSetup() {
  let plan;
  try {
    plan = await lessonSetup(lessonId);
  } catch {
    return true; // the open call that follows reports what is wrong
  }
  if (!plan.needed) return true;
  const dialog = $("setup-dialog");
  $("setup-changes").replaceChildren(
    ...plan.changes.map((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      return li;
    }),
  );
  say("This lesson needs your lab set up for it: see the question.");
  const answer = await new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true });
    dialog.showModal();
    $("setup-open").focus();
  });
  return answer === "open";
}

async function boot() {
  if (!(await confirmSetup())) {
    say("The lesson was not opened: your lab is unchanged.");
    window.location.href = "/";
    return;
  }
  say("Setting up the lab for this lesson…");
  let answer;
  try {
    answer = await openLesson(lessonId);
  } catch (err) {
    say(`Cannot open the lesson: ${err.message}`, true);
    setText($("step-title"), "This lesson could not be opened.");
    view.start();
    return;
  }
  lesson = answer.lesson;
  if (view.designs) view.designs.setFixedByLesson(lesson.design_switch ? "" : lesson.title);
  renderLesson();
  $("lesson-intro").open = answer.current === 0;
  view.start(answer.lab_description);
  applyState(answer);
  say(answer.lab_set_up ? "The lab was set up for this lesson: its partitions are booting." : "Your lab is ready for this lesson.");
  window.__hyperlab.lesson = { get state() { return state; }, poll: () => poll(true) };
  pollTimer = setTimeout(() => poll(), POLL_MS);
}

boot();
