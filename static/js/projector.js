// /instructor/classes/<id>/projector: the class's aggregate, for the wall — no names. Per step: how many
// passed (a bar), how many are working or stuck; for a step with a prediction, every student's prediction
// as a dot on one axis with the measured value as a line, so the class sees how far its guesses were.
// Follows the same SSE stream as the dashboard (the view's "aggregate").

import { followClassView } from "./api.js";

const $ = (id) => document.getElementById(id);
const classId = document.body.dataset.class;
const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 560;
const HEIGHT = 56;

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function svg(tag, attrs = {}, text = "") {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

function fmt(n) {
  return Number.isInteger(n) ? n.toLocaleString("en") : n.toLocaleString("en", { maximumFractionDigits: 2 });
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Predictions as dots, the measured value (median of the class's measurements) as a line. */
function spread(predictions, measured) {
  const values = [...predictions, ...measured];
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (lo === hi) { lo -= 1; hi += 1; }
  const pad = (hi - lo) * 0.05;
  lo -= pad; hi += pad;
  const x = (v) => 10 + ((v - lo) / (hi - lo)) * (WIDTH - 20);
  const pic = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "spread", role: "img" });
  pic.append(svg("line", { x1: 10, x2: WIDTH - 10, y1: 30, y2: 30, class: "axis" }));
  const seen = new Map();
  for (const p of predictions) {
    const key = Math.round(x(p));
    const stack = seen.get(key) || 0;
    seen.set(key, stack + 1);
    pic.append(svg("circle", { cx: x(p), cy: 30 - stack * 7, r: 4, class: "guess" }));
  }
  let words = `${predictions.length} prediction(s) from ${fmt(Math.min(...predictions))} to ${fmt(Math.max(...predictions))}`;
  if (measured.length) {
    const m = median(measured);
    pic.append(svg("line", { x1: x(m), x2: x(m), y1: 4, y2: 44, class: "measured" }));
    pic.append(svg("text", { x: x(m) + 4, y: 54, class: "measured-label" }, `measured ${fmt(m)}`));
    const close = predictions.filter((p) => Math.abs(p - m) <= Math.abs(m) * 0.1).length;
    words += `; measured ${fmt(m)}; ${close} within 10 %`;
  }
  pic.append(svg("text", { x: 10, y: 54, class: "range" }, fmt(lo + pad)));
  pic.setAttribute("aria-label", words);
  return { pic, words };
}

function render(view) {
  const total = view.students.length;
  const box = $("projector");
  box.replaceChildren();
  box.append(el("p", { class: "joined" }, `${total} student${total === 1 ? "" : "s"} joined`));
  for (const lesson of view.lessons) {
    const section = el("section", { class: "proj-lesson", "aria-label": lesson.title }, el("h2", {}, lesson.title));
    const released = view.class.lockstep[lesson.id];
    lesson.steps.forEach((step, i) => {
      const agg = view.aggregate[lesson.id][i];
      const pct = total ? Math.round((agg.passed / total) * 100) : 0;
      const line = el("div", { class: "proj-step", "data-step": step.id });
      const locked = released !== undefined && i > released;
      line.append(
        el("div", { class: "proj-title" }, `${i + 1}. ${step.title}${locked ? " (not released yet)" : ""}`),
        el("div", { class: "bar", role: "img", "aria-label": `${agg.passed} of ${total} passed` },
          el("span", { class: "fill", style: `width:${pct}%` })),
        el("div", { class: "proj-count" }, `${agg.passed} of ${total} passed`,
          agg.working || agg.stuck ? ` · ${agg.working} working · ${agg.stuck} stuck` : ""),
      );
      if (agg.predictions.length) {
        const { pic, words } = spread(agg.predictions, agg.measured);
        line.append(pic, el("p", { class: "proj-words" }, words));
      }
      section.append(line);
    });
    box.append(section);
  }
}

followClassView(classId, render, $("link-state"));
