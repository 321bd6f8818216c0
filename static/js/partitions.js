// The partitions table (Hyper-V Manager's "Virtual Machines" list). Rows are built once per partition
// and then updated in place 10 times a second, so buttons keep keyboard focus while counters move.

const BUTTONS = [
  { action: "start", label: "Start" },
  { action: "turn_off", label: "Turn off" },
  { action: "shut_down", label: "Shut down" },
  { action: "reset", label: "Reset" },
  { action: "pause", label: "Pause", toggle: "resume", toggleLabel: "Resume" },
];

/** A counter total: the exact name if the lab reports it, else the sum of its dotted children. */
export function counterTotal(counters, name) {
  if (typeof counters[name] === "number") return counters[name];
  const prefix = `${name}.`;
  let total = 0;
  let seen = false;
  for (const [key, value] of Object.entries(counters)) {
    if (key.startsWith(prefix) && typeof value === "number") {
      total += value;
      seen = true;
    }
  }
  return seen ? total : null;
}

export function formatUptime(ms) {
  if (typeof ms !== "number" || !(ms > 0)) return "—";
  const total = Math.floor(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return `${h}:${pad(m)}:${pad(s)}`;
}

export function formatNumber(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  return Number.isInteger(value) ? value.toLocaleString("en-US") : value.toLocaleString("en-US", { maximumFractionDigits: 2 });
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

export class PartitionTable {
  /**
   * @param {HTMLTableSectionElement} tbody
   * @param {{onAction: Function, onConnect: Function, onSelect: Function}} handlers
   */
  constructor(tbody, handlers) {
    this.tbody = tbody;
    this.handlers = handlers;
    this.rows = new Map();
    this.selected = null;
    this.busy = new Set(); // partitions with an action in flight: their buttons stay disabled
  }

  select(name) {
    this.selected = name;
    for (const [rowName, row] of this.rows) {
      row.tr.classList.toggle("selected", rowName === name);
      row.tr.setAttribute("aria-selected", rowName === name ? "true" : "false");
    }
    this.handlers.onSelect(name);
  }

  buildRow(name) {
    const tr = document.createElement("tr");
    tr.dataset.partition = name;
    tr.tabIndex = 0;
    tr.setAttribute("aria-selected", "false");
    const cell = (cls) => {
      const td = document.createElement("td");
      if (cls) td.className = cls;
      tr.append(td);
      return td;
    };
    const row = { tr };
    row.name = cell("name");
    row.name.textContent = name;
    row.role = cell("role");
    row.stateCell = cell("state-cell");
    row.state = document.createElement("span");
    row.state.className = "state";
    row.reason = document.createElement("span");
    row.reason.className = "reason";
    row.stateCell.append(row.state, row.reason);
    row.uptime = cell("num uptime");
    row.exits = cell("num exits");
    row.syscalls = cell("num syscalls");
    row.interrupts = cell("num interrupts");
    const actions = cell();
    const box = document.createElement("div");
    box.className = "actions";
    actions.append(box);
    row.buttons = BUTTONS.map((spec) => {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.action = spec.action;
      button.textContent = spec.label;
      button.addEventListener("click", (event) => {
        event.stopPropagation();
        this.runAction(name, button.dataset.action);
      });
      box.append(button);
      return { spec, button };
    });
    const connect = document.createElement("button");
    connect.type = "button";
    connect.className = "primary connect";
    connect.textContent = "Connect";
    connect.setAttribute("aria-label", `Connect to the console of ${name}`);
    connect.addEventListener("click", (event) => {
      event.stopPropagation();
      this.select(name);
      this.handlers.onConnect(name);
    });
    box.append(connect);
    tr.addEventListener("click", () => this.select(name));
    tr.addEventListener("keydown", (event) => {
      if (event.target === tr && (event.key === "Enter" || event.key === " ")) {
        event.preventDefault();
        this.select(name);
      }
    });
    this.tbody.append(tr);
    this.rows.set(name, row);
    return row;
  }

  async runAction(name, action) {
    this.busy.add(name);
    this.refreshButtons(name);
    try {
      const partition = await this.handlers.onAction(name, action);
      if (partition) this.last.set(name, partition);
    } finally {
      this.busy.delete(name);
      this.refreshButtons(name);
    }
  }

  refreshButtons(name) {
    const row = this.rows.get(name);
    const partition = this.last?.get(name);
    if (!row || !partition) return;
    const allowed = new Set(this.alive ? partition.actions || [] : []);
    const busy = this.busy.has(name);
    for (const { spec, button } of row.buttons) {
      let action = spec.action;
      let label = spec.label;
      if (spec.toggle && allowed.has(spec.toggle)) {
        action = spec.toggle;
        label = spec.toggleLabel;
      }
      button.dataset.action = action;
      setText(button, label);
      button.setAttribute("aria-label", `${label} ${name}`);
      button.disabled = busy || !allowed.has(action);
    }
  }

  /**
   * @param {Object<string, object>} partitions name -> partition dict
   * @param {Object<string, number>} counters
   * @param {boolean} alive
   */
  update(partitions, counters, alive) {
    this.alive = alive;
    // A dead lab may report no partitions: keep showing the last known ones, marked "lab stopped".
    const known = Object.keys(partitions || {}).length || !this.last ? Object.entries(partitions || {}) : [...this.last];
    this.last = new Map(known);
    for (const [name, p] of this.last) {
      const row = this.rows.get(name) || this.buildRow(name);
      setText(row.role, p.role || "");
      const state = alive ? p.state : "lab stopped";
      setText(row.state, state);
      const cls = `state state-${alive ? p.state : "stopped"}`;
      if (row.state.className !== cls) row.state.className = cls;
      setText(row.reason, alive && p.state === "crashed" && p.reason ? p.reason : "");
      setText(row.uptime, alive && p.state !== "off" ? formatUptime(p.uptime_ms) : "—");
      setText(row.exits, formatNumber(counterTotal(counters, `${name}.exits`)));
      setText(row.syscalls, formatNumber(counterTotal(counters, `${name}.syscalls`)));
      const interrupts = counterTotal(counters, `${name}.interrupts_injected`) ?? counterTotal(counters, `${name}.interrupts`);
      setText(row.interrupts, formatNumber(interrupts));
      this.refreshButtons(name);
    }
    for (const [name, row] of this.rows) {
      if (!this.last.has(name) && alive) {
        row.tr.remove();
        this.rows.delete(name);
      }
    }
    if (this.selected === null && this.rows.size) {
      this.select(this.rows.has("child1") ? "child1" : this.rows.keys().next().value);
    }
  }
}
