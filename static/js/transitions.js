// Recent transitions: each hop recorded by the code that made it (docs/telemetry.md, "Transitions"),
// filterable by partition and kind, pausable, with the time measured in this emulator and the cost
// modelled for real hardware in separate columns (they are different kinds of figure).
//
// Each telemetry snapshot carries the lab's latest hops (all partitions together); the panel keeps its
// own bounded history so that a quiet partition's hops are not pushed out by a busy one's at once.

import { formatNumber } from "./partitions.js";

const HISTORY = 400; // hops kept in this browser
const SHOWN = 40; // rows shown after filtering

/** The kind of a hop, for the filter: the reason, with fault:<kind> and vsp:<name> grouped. */
export function kindOf(reason) {
  const text = String(reason || "");
  const colon = text.indexOf(":");
  return colon > 0 ? text.slice(0, colon) : text;
}

const key = (tr) => `${tr.t}|${tr.partition}|${tr.from}|${tr.to}|${tr.reason}`;

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

export class TransitionsPanel {
  /**
   * @param {{tbody: HTMLElement, partition: HTMLSelectElement, kind: HTMLSelectElement,
   *          pause: HTMLButtonElement, summary: HTMLElement}} els
   */
  constructor({ tbody, partition, kind, pause, summary }) {
    this.tbody = tbody;
    this.partitionSelect = partition;
    this.kindSelect = kind;
    this.pauseButton = pause;
    this.summary = summary;
    this.history = [];
    this.seen = new Set();
    this.kinds = new Set();
    this.partitions = new Set();
    this.paused = false;
    this.pinned = false; // true once the student picks a partition here: then the table's selection no longer moves it
    this.costModel = {};
    this.lastRenderKey = "";
    partition.addEventListener("change", () => {
      this.pinned = true;
      this.render(true);
    });
    kind.addEventListener("change", () => this.render(true));
    pause.addEventListener("click", () => this.setPaused(!this.paused));
    this.setPaused(false);
  }

  setPaused(paused) {
    this.paused = paused;
    this.pauseButton.setAttribute("aria-pressed", paused ? "true" : "false");
    this.pauseButton.textContent = paused ? "Resume list" : "Pause list";
    this.render(true);
  }

  /** Follow the partition selected in the partitions table (as Hyper-V Manager's details pane does),
   * until the student picks a partition in this panel's own filter. */
  follow(name) {
    if (!name || this.pinned) return;
    this.ensureOption(this.partitionSelect, name, name, this.partitions);
    this.partitionSelect.value = name;
    this.render(true);
  }

  ensureOption(select, value, label, known) {
    if (known.has(value)) return;
    known.add(value);
    const option = document.createElement("option");
    option.value = value;
    option.textContent = label;
    const after = [...select.options].find((o) => o.value !== "" && o.value > value);
    select.insertBefore(option, after || null);
  }

  update(snapshot) {
    this.costModel = snapshot.cost_model || this.costModel;
    if (this.paused) return; // the table holds still; hops keep arriving into the lab's own log
    let added = false;
    for (const tr of snapshot.transitions || []) {
      const k = key(tr);
      if (this.seen.has(k)) continue;
      this.seen.add(k);
      this.history.push(tr);
      added = true;
      if (tr.partition) this.ensureOption(this.partitionSelect, tr.partition, tr.partition, this.partitions);
      const kind = kindOf(tr.reason);
      if (kind) this.ensureOption(this.kindSelect, kind, kind, this.kinds);
    }
    if (this.history.length > HISTORY) {
      for (const old of this.history.splice(0, this.history.length - HISTORY)) this.seen.delete(key(old));
    }
    if (added) this.render();
  }

  filtered() {
    const partition = this.partitionSelect.value;
    const kind = this.kindSelect.value;
    return this.history.filter((tr) => (!partition || tr.partition === partition) && (!kind || kindOf(tr.reason) === kind));
  }

  render(force = false) {
    const rows = this.filtered();
    const recent = rows.slice(-SHOWN).reverse();
    const renderKey = `${recent.length ? key(recent[0]) : ""}|${rows.length}|${this.paused}`;
    if (!force && renderKey === this.lastRenderKey) return;
    this.lastRenderKey = renderKey;
    this.tbody.replaceChildren(...recent.map((tr) => this.row(tr)));
    const what = this.paused ? "paused" : "live";
    this.summary.textContent = `${what} · ${recent.length} of ${rows.length} matching hops shown, newest first`;
  }

  row(tr) {
    const out = document.createElement("tr");
    out.append(
      cell(typeof tr.t === "number" ? tr.t.toFixed(3) : "—", "num"),
      cell(tr.partition ?? "—", "mono"),
      cell(`${tr.from} → ${tr.to}`, "hop"),
      cell(tr.reason || "—", "mono"),
    );
    const measured = cell(typeof tr.measured_us === "number" ? tr.measured_us.toFixed(1) : "—", "num");
    if (typeof tr.measured_us !== "number") {
      measured.title = "not timed on its own: part of a longer path, whose total is on its resume hop";
    }
    const modelled = cell(typeof tr.modeled_cycles === "number" ? formatNumber(tr.modeled_cycles) : "—", "num modelled-cell");
    const source = this.costModel[tr.model]?.source;
    if (source) modelled.title = `modelled, not measured here: ${source}`;
    out.append(measured, modelled);
    return out;
  }
}
