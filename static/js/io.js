// The I/O panel: two partitions side by side (child1 | child2 by default) with the same rows, live
// from the telemetry snapshots: exits by reason, intercepts served by the root's worker, VMBus packets
// and signals, disk throughput and transitions. Counts are the lab's counters; rates are computed here
// from counter differences over the last WINDOW_S seconds of snapshot time (the snapshot's "t").
// Modelled figures (real-hardware cycle costs from the snapshot's cost_model) are labelled as such.

import { formatNumber } from "./partitions.js";

/** Rates are averaged over this much snapshot time, so 10 Hz jitter does not make them flicker. */
export const WINDOW_S = 2;
/** Transitions kept per partition (the snapshot carries a bounded, lab-wide sample). */
const KEEP_TRANSITIONS = 256;
/** Exit reasons shown even before they happen; others get a row when they appear. */
const FIXED_EXITS = ["io_port", "hypercall", "cpuid", "hlt"];
const EXIT_LABELS = {
  io_port: "port I/O (IN/OUT)",
  hypercall: "hypercall (vmcall)",
  cpuid: "CPUID",
  hlt: "HLT (idle until an interrupt)",
};
/** Which cost-model row prices an exit, when no recent transition says so. */
const EXIT_MODELS = { io_port: "vm_exit", hypercall: "hypercall", cpuid: "cpuid_exit", hlt: "vm_exit" };
const SIDES = ["left", "right"];
const MB = 1e6;

// --- formatting ---------------------------------------------------------------------------------------

export function formatRate(rate) {
  if (rate === null || rate === undefined || !Number.isFinite(rate)) return "—";
  if (rate === 0) return "0";
  if (Math.abs(rate) >= 100) return Math.round(rate).toLocaleString("en-US");
  return rate.toLocaleString("en-US", { maximumFractionDigits: 1, minimumFractionDigits: 1 });
}

/** Fixed decimals with thousands separators; "—" for no number. */
export function formatFixed(value, digits = 2) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Bytes as MB (10^6 bytes), two decimals, without the unit (the row's label names it). */
export const formatMB = (bytes) => formatFixed(bytes === null || bytes === undefined ? null : bytes / MB);

// --- counter history and rates ------------------------------------------------------------------------

/** Snapshots of the last WINDOW_S seconds, and per-second rates between the oldest and the newest. */
export class RateWindow {
  constructor(windowS = WINDOW_S) {
    this.windowS = windowS;
    this.history = [];
  }

  push(t, counters) {
    if (typeof t !== "number") return;
    const last = this.history[this.history.length - 1];
    if (last && t < last.t) this.history = []; // a restarted lab starts its clock again
    if (last && t === last.t) return;
    this.history.push({ t, counters });
    while (this.history.length > 2 && this.history[1].t <= t - this.windowS) this.history.shift();
  }

  get latest() {
    return this.history[this.history.length - 1] || null;
  }

  /** Counter ``key`` per second over the window; null while there is too little history or no counter. */
  rate(key) {
    const now = this.latest;
    const base = this.history[0];
    if (!now || !base || now === base) return null;
    const dt = now.t - base.t;
    const value = now.counters[key];
    if (dt < 0.25 || typeof value !== "number") return null;
    const before = typeof base.counters[key] === "number" ? base.counters[key] : 0; // appears when first counted
    return value >= before ? (value - before) / dt : null;
  }
}

// --- rows -------------------------------------------------------------------------------------------------
// A row's get(view) returns {count, rate} (two cells per side) or {value} (one merged cell per side),
// already formatted. view: {p: partition name, counters, rates: RateWindow, seen: transitions of p,
// costModel}. An optional row is shown only while one of the two partitions reports its counter.

const counterRow = (id, label, options = {}) => ({
  id,
  label,
  ...options,
  get(view) {
    const value = view.counters[`${view.p}.${id}`];
    const rate = view.rates.rate(`${view.p}.${id}`);
    if (options.bytes) return { count: formatMB(value ?? null), rate: value === undefined ? "—" : formatMB(rate) };
    return { count: formatNumber(value ?? null), rate: value === undefined ? "—" : formatRate(rate) };
  },
});

function exitKeys(view) {
  const prefix = `${view.p}.exits.`;
  return Object.keys(view.counters).filter((k) => k.startsWith(prefix) && !k.endsWith(".preempt"));
}

/** Cost-model row that prices exits of ``reason``: from a recent transition if any, else the default. */
function exitModel(view, reason) {
  for (let i = view.seen.length - 1; i >= 0; i -= 1) {
    const tr = view.seen[i];
    if (tr.to === "hypervisor" && tr.reason === reason && tr.model) return tr.model;
  }
  return EXIT_MODELS[reason] || "vm_exit";
}

function mean(values) {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
}

function sections(exitReasons) {
  const extra = exitReasons.filter((r) => !FIXED_EXITS.includes(r));
  return [
    {
      id: "exits",
      title: "Exits to the hypervisor",
      note: "counts and per second",
      rows: [
        ...[...FIXED_EXITS, ...extra].map((r) => counterRow(`exits.${r}`, EXIT_LABELS[r] || r.replace(/_/g, " "))),
        {
          id: "exits.total",
          label: "all exits the guest caused",
          title: "every exit above; preemptions (the hypervisor taking the CPU back) are not counted",
          get(view) {
            const keys = exitKeys(view);
            if (!keys.length) return { count: "—", rate: "—" };
            const total = keys.reduce((sum, k) => sum + view.counters[k], 0);
            const rates = keys.map((k) => view.rates.rate(k));
            const rate = rates.some((r) => r === null) ? null : rates.reduce((a, b) => a + b, 0);
            return { count: formatNumber(total), rate: formatRate(rate) };
          },
        },
        counterRow("exits.preempt", "preempted (time slice over)", {
          title: "not caused by the guest: its time slice ended, or the hypervisor needed the CPU",
        }),
      ],
    },
    {
      id: "worker",
      title: "Served by the root: worker process and VSPs",
      rows: [
        counterRow("intercepts.served_by_root", "intercepts served by the root's worker", {
          title: "port I/O of this child that went exit → intercept message to the root → root kernel → "
            + "worker process (device model) → hypercall → resume",
        }),
        counterRow("worker.requests", "requests served by the root's workers", {
          optional: true,
          title: "the root's side: every intercept its worker processes served, for all children",
        }),
        counterRow("vsp.batches", "VSP runs for a guest's signal", {
          optional: true,
          title: "the root's side: times the root ran a VSP (storage, console, integration services) because a "
            + "child signalled, for all children; one run drains everything the ring holds",
        }),
      ],
    },
    {
      id: "vmbus",
      title: "VMBus",
      rows: [
        counterRow("vmbus.packets_out", "packets guest → host"),
        counterRow("vmbus.packets_in", "packets host → guest"),
        counterRow("vmbus.bytes_out", "data guest → host", { bytes: true, unit: "MB" }),
        counterRow("vmbus.bytes_in", "data host → guest", { bytes: true, unit: "MB" }),
        counterRow("vmbus.signals_sent", "signals to the host (HvCallSignalEvent)", {
          title: "the guest wrote into an empty ring whose reader was not masked, so it signalled",
        }),
        counterRow("vmbus.signals_suppressed", "signals suppressed (batched)", {
          title: "writes that needed no signal: the host had not yet drained the ring, or masked interrupts",
        }),
        {
          id: "vmbus.suppressed_share",
          label: "share of guest writes that needed no signal",
          unit: "%",
          get(view) {
            const sent = view.counters[`${view.p}.vmbus.signals_sent`];
            const suppressed = view.counters[`${view.p}.vmbus.signals_suppressed`];
            if (typeof sent !== "number" || typeof suppressed !== "number" || sent + suppressed === 0) {
              return { value: "—" };
            }
            return { value: ((100 * suppressed) / (sent + suppressed)).toFixed(1) };
          },
        },
        counterRow("vmbus.signals_to_guest", "signals to the guest (event flag + interrupt)"),
        counterRow("vmbus.signals_to_guest_suppressed", "signals to the guest suppressed", {
          title: "host writes that needed no interrupt: the guest's inbound ring already held packets",
        }),
      ],
    },
    {
      id: "disk",
      title: "Disk",
      rows: [
        {
          id: "disk.throughput",
          label: "throughput, read + write",
          unit: "MB/s",
          title: `bytes read and written per second over the last ${WINDOW_S} s, computed in this browser`,
          get(view) {
            const read = view.rates.rate(`${view.p}.disk.bytes_read`);
            const written = view.rates.rate(`${view.p}.disk.bytes_written`);
            if (read === null && written === null) return { value: "—" };
            return { value: formatMB((read ?? 0) + (written ?? 0)) };
          },
        },
        counterRow("disk.bytes_read", "data read", { bytes: true, unit: "MB" }),
        counterRow("disk.bytes_written", "data written", { bytes: true, unit: "MB" }),
        counterRow("disk.sectors_read", "sectors read"),
        counterRow("disk.sectors_written", "sectors written"),
      ],
    },
    {
      id: "transitions",
      title: "Transitions",
      rows: [
        counterRow("transitions", "transitions recorded", {
          optional: true,
          title: "every hop of control between domains and modes this partition caused",
        }),
        {
          id: "transitions.hops_per_exit",
          label: "hops per exit (recent)",
          title: "transitions per exit among this partition's recent transitions: a port-I/O exit served by "
            + "the root's worker takes several hops, one handled in the hypervisor takes two",
          get(view) {
            const exits = view.seen.filter((tr) => tr.to === "hypervisor" && tr.from.startsWith(`${view.p}/`)).length;
            return { value: exits ? (view.seen.length / exits).toFixed(1) : "—" };
          },
        },
        {
          id: "transitions.measured",
          label: "mean time per hop, measured here",
          unit: "µs",
          title: "wall time in this emulator (µs), mean over the partition's recent transitions",
          get(view) {
            const m = mean(view.seen.filter((tr) => typeof tr.measured_us === "number").map((tr) => tr.measured_us));
            return { value: formatFixed(m) };
          },
        },
        {
          id: "transitions.modelled",
          label: "mean cost per hop",
          unit: "cycles",
          modelled: true,
          get(view) {
            const m = mean(view.seen.filter((tr) => typeof tr.modeled_cycles === "number").map((tr) => tr.modeled_cycles));
            return { value: m === null ? "—" : formatNumber(Math.round(m)) };
          },
        },
        {
          id: "transitions.exit_cost",
          label: "cost of these exits",
          modelled: true,
          unit: "Mcycles",
          title: "each exit counted above, priced by the cost model; /s: per second of this lab",
          get(view) {
            const keys = exitKeys(view);
            if (!keys.length || !Object.keys(view.costModel).length) return { count: "—", rate: "—" };
            let total = 0;
            let rate = 0;
            for (const key of keys) {
              const cycles = view.costModel[exitModel(view, key.slice(`${view.p}.exits.`.length))]?.cycles;
              if (typeof cycles !== "number") continue;
              total += view.counters[key] * cycles;
              rate += (view.rates.rate(key) ?? 0) * cycles;
            }
            return { count: formatFixed(total / 1e6), rate: formatFixed(rate / 1e6) };
          },
        },
      ],
    },
  ];
}

// --- the panel ----------------------------------------------------------------------------------------

export class IoPanel {
  /**
   * @param {{table: HTMLTableElement, left: HTMLSelectElement, right: HTMLSelectElement}} elements
   */
  constructor({ table, left, right }) {
    this.table = table;
    this.selects = { left, right };
    this.sides = { left: null, right: null };
    this.rates = new RateWindow();
    this.seen = new Map(); // partition -> recent transitions (deduplicated across snapshots)
    this.seenKeys = new Map(); // partition -> Set of keys of those transitions
    this.partitions = {};
    this.rows = new Map(); // row id -> {tr, cells: {left: {...}, right: {...}}, def}
    this.layoutKey = "";
    this.snapshot = null;
    for (const side of SIDES) {
      this.selects[side].addEventListener("change", () => {
        this.sides[side] = this.selects[side].value;
        this.render();
      });
    }
  }

  /** Show ``name`` in column ``side`` ("left" or "right"). */
  show(side, name) {
    this.sides[side] = name;
    this.selects[side].value = name;
    this.render();
  }

  update(snapshot) {
    this.snapshot = snapshot;
    this.partitions = snapshot.partitions || {};
    if (snapshot.alive !== false) this.rates.push(snapshot.t, snapshot.counters || {});
    this.collect(snapshot.transitions || []);
    this.syncSelects();
    this.render();
  }

  collect(transitions) {
    for (const tr of transitions) {
      const name = tr.partition;
      if (typeof name !== "string") continue;
      const key = `${tr.t}|${tr.from}|${tr.to}|${tr.reason}`;
      let keys = this.seenKeys.get(name);
      if (!keys) {
        keys = new Set();
        this.seenKeys.set(name, keys);
        this.seen.set(name, []);
      }
      if (keys.has(key)) continue;
      keys.add(key);
      const list = this.seen.get(name);
      list.push({ ...tr, key });
      while (list.length > KEEP_TRANSITIONS) keys.delete(list.shift().key);
    }
  }

  syncSelects() {
    const names = Object.keys(this.partitions);
    if (!names.length) return; // a stopped lab reports none: keep the last columns
    const key = names.join(",");
    if (key !== this.namesKey) {
      this.namesKey = key;
      for (const side of SIDES) {
        const select = this.selects[side];
        select.replaceChildren(...names.map((n) => new Option(n, n)));
      }
    }
    const defaults = { left: names.includes("child1") ? "child1" : names[0], right: names.includes("child2") ? "child2" : names[names.length - 1] };
    for (const side of SIDES) {
      if (!names.includes(this.sides[side])) this.sides[side] = defaults[side];
      if (this.selects[side].value !== this.sides[side]) this.selects[side].value = this.sides[side];
    }
  }

  views() {
    const latest = this.rates.latest;
    const counters = latest ? latest.counters : this.snapshot?.counters || {};
    const costModel = this.snapshot?.cost_model || {};
    return Object.fromEntries(SIDES.map((side) => {
      const p = this.sides[side];
      return [side, { p, counters, rates: this.rates, seen: this.seen.get(p) || [], costModel }];
    }));
  }

  /** Extra exit reasons (beyond the fixed ones) of either shown partition: each gets a row. */
  exitReasons(views) {
    const reasons = new Set();
    for (const view of Object.values(views)) {
      for (const key of exitKeys(view)) reasons.add(key.slice(`${view.p}.exits.`.length));
    }
    return [...reasons].filter((r) => !FIXED_EXITS.includes(r)).sort();
  }

  render() {
    if (!this.sides.left || !this.sides.right) return;
    const views = this.views();
    const reasons = this.exitReasons(views);
    const layoutKey = reasons.join(",");
    if (layoutKey !== this.layoutKey || !this.rows.size) {
      this.layoutKey = layoutKey;
      this.build(sections(reasons));
    }
    this.renderHeads();
    for (const { def, cells, tr } of this.rows.values()) {
      if (def.optional) {
        // rows only some partitions have (the root's services) show when a shown partition has them
        const present = SIDES.some((side) => typeof views[side].counters[`${views[side].p}.${def.id}`] === "number");
        if (tr.hidden === present) tr.hidden = !present;
      }
      for (const side of SIDES) {
        const out = def.get(views[side]);
        const c = cells[side];
        if ("value" in out) {
          setCell(c.value, out.value);
        } else {
          setCell(c.count, out.count);
          setCell(c.rate, out.rate);
        }
      }
    }
  }

  renderHeads() {
    for (const side of SIDES) {
      const th = this.table.querySelector(`thead th.io-side[data-side="${side}"]`);
      const name = this.sides[side];
      const p = this.partitions[name];
      let detail = "";
      if (p) {
        const parts = [p.state];
        if (p.role !== "root") parts.push(p.integration_services ? "IS on" : "IS off");
        if (p.ic && typeof p.ic.heartbeat === "string") parts.push(`heartbeat ${p.ic.heartbeat}`);
        detail = parts.join(" · ");
      }
      const text = `${name}\u0000${detail}`;
      if (th.dataset.text === text) continue;
      th.dataset.text = text;
      th.dataset.partition = name;
      const strong = document.createElement("span");
      strong.className = "io-name";
      strong.textContent = name;
      const sub = document.createElement("span");
      sub.className = "io-detail";
      sub.textContent = detail;
      th.replaceChildren(strong, sub);
    }
  }

  build(defs) {
    for (const tbody of this.table.querySelectorAll("tbody")) tbody.remove();
    this.rows.clear();
    for (const section of defs) {
      const tbody = document.createElement("tbody");
      tbody.dataset.section = section.id;
      const head = document.createElement("tr");
      head.className = "io-group";
      const th = document.createElement("th");
      th.scope = "colgroup";
      th.colSpan = 5;
      th.textContent = section.title;
      head.append(th);
      tbody.append(head);
      for (const def of section.rows) {
        const tr = document.createElement("tr");
        tr.dataset.row = def.id;
        const label = document.createElement("th");
        label.scope = "row";
        label.textContent = def.label;
        if (def.unit) {
          const unit = document.createElement("span");
          unit.className = "unit";
          unit.textContent = `(${def.unit})`;
          label.append(" ", unit);
        }
        if (def.modelled) {
          const tag = document.createElement("span");
          tag.className = "modelled";
          tag.textContent = "modelled (real hardware)";
          label.append(" ", tag);
        }
        const sources = def.modelled ? this.modelSources() : "";
        const title = [def.title, sources].filter(Boolean).join("\n");
        if (title) label.title = title;
        tr.append(label);
        const cells = {};
        const probe = def.get({ p: "", counters: {}, rates: new RateWindow(), seen: [], costModel: {} });
        for (const side of SIDES) {
          if ("value" in probe) {
            const td = cellOf(def.id, side, "value", 2);
            tr.append(td);
            cells[side] = { value: td };
          } else {
            const count = cellOf(def.id, side, "count");
            const rate = cellOf(def.id, side, "rate");
            tr.append(count, rate);
            cells[side] = { count, rate };
          }
        }
        tbody.append(tr);
        this.rows.set(def.id, { tr, def, cells });
      }
      this.table.append(tbody);
    }
  }

  modelSources() {
    const model = this.snapshot?.cost_model || {};
    const lines = Object.entries(model).map(([kind, m]) => `${kind}: ${formatNumber(m.cycles)} cycles — ${m.source}`);
    return lines.length ? `Modelled, not measured here. Sources:\n${lines.join("\n")}` : "Modelled, not measured here.";
  }

  /** Text of one cell, for tests: ``cell("exits.io_port", "right", "count")``. */
  cell(rowId, side, col) {
    const row = this.rows.get(rowId);
    return row ? row.cells[side][col]?.textContent ?? null : null;
  }
}

function cellOf(rowId, side, col, span = 1) {
  const td = document.createElement("td");
  td.className = col === "value" ? "num io-value" : `num io-${col}`;
  td.dataset.side = side;
  td.dataset.col = col;
  if (span > 1) td.colSpan = span;
  td.textContent = "—";
  return td;
}

/** Update a cell; a value that moved since the last snapshot is highlighted until it holds still. */
function setCell(td, text) {
  const changed = td.textContent !== text;
  if (changed) td.textContent = text;
  if (td.classList.contains("changed") !== changed) td.classList.toggle("changed", changed);
}
