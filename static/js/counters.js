// Counters panel: every live counter of the selected partition, with a per-second rate computed
// between snapshots, plus the lab's recent transitions (each one recorded by the code that made it).

import { formatNumber } from "./partitions.js";

const MAX_TRANSITIONS = 12;

export class CountersPanel {
  constructor({ tbody, title, transitions }) {
    this.tbody = tbody;
    this.title = title;
    this.transitionsList = transitions;
    this.partition = null;
    this.rows = new Map();
    this.previous = null; // {t, counters} of the last snapshot, for rates
    this.lastTransitionKey = "";
  }

  show(partition) {
    if (partition === this.partition) return;
    this.partition = partition;
    this.title.textContent = partition ? `— ${partition}` : "";
    this.tbody.replaceChildren();
    this.rows.clear();
  }

  update(snapshot) {
    const counters = snapshot.counters || {};
    const prefix = this.partition ? `${this.partition}.` : null;
    const names = Object.keys(counters)
      .filter((name) => prefix && name.startsWith(prefix))
      .sort();
    const dt = this.previous && typeof snapshot.t === "number" ? snapshot.t - this.previous.t : 0;
    for (const name of names) {
      let row = this.rows.get(name);
      if (!row) {
        row = this.addRow(name, prefix);
      }
      const value = counters[name];
      const text = formatNumber(value);
      const changed = row.value.textContent !== text;
      if (changed) row.value.textContent = text;
      row.value.classList.toggle("changed", changed && row.seen);
      row.seen = true;
      const before = this.previous ? this.previous.counters[name] : undefined;
      const rate = dt > 0 && typeof before === "number" && typeof value === "number" ? (value - before) / dt : null;
      const rateText = rate === null ? "" : formatNumber(Math.round(rate));
      if (row.rate.textContent !== rateText) row.rate.textContent = rateText;
    }
    if (typeof snapshot.t === "number") this.previous = { t: snapshot.t, counters };
    this.updateTransitions(snapshot.transitions || [], snapshot.cost_model || {});
  }

  addRow(name, prefix) {
    const tr = document.createElement("tr");
    const label = document.createElement("td");
    label.textContent = name.slice(prefix.length);
    label.title = name;
    const value = document.createElement("td");
    value.className = "num";
    const rate = document.createElement("td");
    rate.className = "num";
    tr.append(label, value, rate);
    // keep rows sorted: insert before the first row whose name sorts after this one
    const after = [...this.rows.entries()].find(([other]) => other > name);
    this.tbody.insertBefore(tr, after ? after[1].tr : null);
    const row = { tr, value, rate, seen: false };
    this.rows.set(name, row);
    return row;
  }

  updateTransitions(transitions, costModel = {}) {
    const recent = transitions.slice(-MAX_TRANSITIONS).reverse();
    const key = recent.length ? JSON.stringify(recent[0]) + recent.length : "";
    if (key === this.lastTransitionKey) return;
    this.lastTransitionKey = key;
    this.transitionsList.replaceChildren(
      ...recent.map((tr) => {
        const li = document.createElement("li");
        const t = typeof tr.t === "number" ? `${tr.t.toFixed(3)}s` : "";
        const reason = tr.reason ? ` (${tr.reason})` : "";
        const measured = typeof tr.measured_us === "number" ? ` · measured ${tr.measured_us.toFixed(1)} µs` : "";
        const modeled = typeof tr.modeled_cycles === "number"
          ? ` · modelled (real hardware) ${formatNumber(tr.modeled_cycles)} cycles` : "";
        li.textContent = `${t} ${tr.partition ?? ""}: ${tr.from} → ${tr.to}${reason}${measured}${modeled}`;
        const source = costModel[tr.model]?.source;
        if (source) li.title = `modelled cost, not measured here: ${source}`;
        return li;
      }),
    );
  }
}
