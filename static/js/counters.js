// Counters panel: every live counter of the selected partition, with a per-second rate computed
// between snapshots. (Recent transitions are transitions.js.)

import { describeCounter } from "./catalogue.js";
import { formatNumber } from "./partitions.js";

export class CountersPanel {
  constructor({ tbody, title }) {
    this.tbody = tbody;
    this.title = title;
    this.partition = null;
    this.rows = new Map();
    this.previous = null; // {t, counters} of the last snapshot, for rates
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
      const text = row.unit ? `${formatNumber(value)} ${row.unit}` : formatNumber(value);
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
  }

  addRow(name, prefix) {
    const tr = document.createElement("tr");
    const label = document.createElement("th");
    label.scope = "row";
    const code = document.createElement("code");
    code.textContent = name.slice(prefix.length);
    label.append(code);
    // what it means and its unit, from the one documented catalogue (docs/telemetry.md)
    const doc = describeCounter(name);
    if (doc && doc.meaning) {
      const meaning = document.createElement("span");
      meaning.className = "counter-meaning";
      meaning.textContent = doc.short || doc.meaning;
      if (doc.short && doc.short !== doc.meaning) meaning.title = doc.meaning;
      label.append(meaning);
    }
    const value = document.createElement("td");
    value.className = "num";
    const rate = document.createElement("td");
    rate.className = "num";
    tr.append(label, value, rate);
    // keep rows sorted: insert before the first row whose name sorts after this one
    const after = [...this.rows.entries()].filter(([other]) => other > name).sort(([a], [b]) => (a < b ? -1 : 1))[0];
    this.tbody.insertBefore(tr, after ? after[1].tr : null);
    const row = { tr, value, rate, seen: false, unit: doc ? doc.unit : "" };
    this.rows.set(name, row);
    return row;
  }
}
