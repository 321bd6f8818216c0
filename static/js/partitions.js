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

/** Set (or remove, for null) an attribute only when it changes: rows are refreshed 10 times a second. */
function setAttr(el, name, value) {
  if (value === null || value === undefined) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else if (el.getAttribute(name) !== value) {
    el.setAttribute(name, value);
  }
}

/** Why an action button is disabled: shown as its tooltip and read as its accessible description. */
function explain(button, reason) {
  setAttr(button, "title", reason);
  setAttr(button, "aria-description", reason);
}

/**
 * Why "Shut down" is not offered now, or null when it is. The lab lists shut_down in the actions only
 * while the guest has its shutdown channel (an Integration Service over VMBus) open.
 * @param {object} p partition description
 * @param {{alive: boolean, bootIc?: boolean}} ctx bootIc: whether the running boot has Integration
 *   Services (differs from p.integration_services when the setting changed since it booted)
 */
export function shutDownReason(p, { alive = true, bootIc = undefined } = {}) {
  if (!alive) return "the lab is stopped";
  if ((p.actions || []).includes("shut_down")) return null;
  if (p.role === "root") return "the root partition hosts the Integration Services; it has no shutdown channel";
  if (p.state !== "running") return `${p.name} is ${p.state}`;
  const booted = bootIc ?? p.integration_services;
  if (!booted && p.integration_services) {
    return "Integration Services are installed from the next start: restart it to use them";
  }
  if (!booted) return "needs Integration Services: install them in Settings and restart";
  return "the guest has not opened its shutdown channel yet";
}

/** Why "Download disk" is disabled now, or null when the disk can be downloaded. */
export function downloadReason(p, { alive } = { alive: true }) {
  if (!alive) return "the lab is stopped";
  if (!p.disk) return `${p.name} has no disk`;
  if (p.state !== "off") return `turn ${p.name} off first: a disk in use may be mid-write`;
  return null;
}

/** The heartbeat cell: [text, css class, explanation]. */
export function heartbeatView(p, alive) {
  if (!alive) return ["—", "hb hb-none", "the lab is stopped"];
  if (p.role === "root") return ["—", "hb hb-na", "the root partition runs the Integration Services; it sends no heartbeat"];
  const ic = p.ic;
  if (!ic || typeof ic.heartbeat !== "string") return ["—", "hb hb-na", "not reported by this lab"];
  const ago = typeof ic.last_heartbeat_ms_ago === "number" ? `${(ic.last_heartbeat_ms_ago / 1000).toFixed(1)} s ago` : null;
  if (ic.heartbeat === "ok") return ["ok", "hb hb-ok", `the guest answers its heartbeat${ago ? `: last answer ${ago}` : ""}`];
  if (ic.heartbeat === "waiting") {
    return ["waiting", "hb hb-waiting", `heartbeat sent, no answer yet${ago ? ` (last answer ${ago})` : ""}`];
  }
  if (!p.integration_services) return ["none", "hb hb-none", "Integration Services are off (Settings)"];
  if (p.state !== "running") return ["none", "hb hb-none", `${p.name} is ${p.state}`];
  return ["none", "hb hb-none", "the guest has not opened its heartbeat channel (yet, or it booted without Integration Services)"];
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
    this.pending = new Map(); // name -> settings of the running boot, after settings changed meanwhile
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
    row.pending = document.createElement("span");
    row.pending.className = "pending";
    row.stateCell.append(row.state, row.reason, row.pending);
    row.heartbeatCell = cell("heartbeat");
    row.heartbeat = document.createElement("span");
    row.heartbeat.className = "hb";
    row.heartbeatWhy = document.createElement("span");
    row.heartbeatWhy.className = "visually-hidden"; // the tooltip's explanation, for screen readers
    row.heartbeatCell.append(row.heartbeat, row.heartbeatWhy);
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
    row.settings = document.createElement("button");
    row.settings.type = "button";
    row.settings.className = "settings";
    row.settings.textContent = "Settings…";
    row.settings.setAttribute("aria-label", `Settings of ${name}`);
    row.settings.setAttribute("aria-haspopup", "dialog");
    row.settings.addEventListener("click", (event) => {
      event.stopPropagation();
      const partition = this.last?.get(name);
      if (partition) this.handlers.onSettings?.(partition, row.settings);
    });
    row.download = document.createElement("button");
    row.download.type = "button";
    row.download.className = "download";
    row.download.textContent = "Download disk (.vhd)";
    row.download.setAttribute("aria-label", `Download disk (.vhd) of ${name}`); // the visible text first (WCAG 2.5.3)
    row.download.hidden = true; // shown for partitions that have a disk (children)
    row.download.addEventListener("click", (event) => {
      event.stopPropagation();
      this.handlers.onDownload?.(name);
    });
    box.append(row.settings, row.download);
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
      if (action === "shut_down") {
        const reason = shutDownReason(partition, { alive: this.alive, bootIc: this.pending.get(name)?.integration_services });
        explain(button, button.disabled ? reason || (busy ? "an action is in progress" : null) : null);
      }
    }
    row.settings.disabled = !this.alive;
    explain(row.settings, this.alive ? null : "the lab is stopped");
    row.download.hidden = !partition.disk && partition.role === "root";
    const why = downloadReason(partition, { alive: this.alive });
    row.download.disabled = busy || why !== null;
    explain(row.download, why);
  }

  /**
   * Settings were saved for a booted partition: they apply at its next start. Remember what the
   * running boot has, so the row can say so until the partition starts again.
   */
  settingsSaved(before, after) {
    if (!["running", "paused", "starting", "stopping"].includes(before.state)) return;
    const boot = this.pending.get(before.name) || {
      integration_services: before.integration_services,
      memory_mb: before.memory_mb,
      uptime_ms: before.uptime_ms,
    };
    this.pending.set(before.name, boot);
    this.last?.set(after.name, { ...this.last.get(after.name), ...after });
    this.refreshPending(after.name);
    this.refreshButtons(after.name);
  }

  refreshPending(name) {
    const row = this.rows.get(name);
    const p = this.last?.get(name);
    const boot = this.pending.get(name);
    if (!row || !p) return;
    // A new boot (off, crashed, starting, or uptime that went back) runs with the new settings.
    if (boot && (!["running", "paused", "stopping"].includes(p.state) || (p.uptime_ms ?? 0) < (boot.uptime_ms ?? 0))) {
      this.pending.delete(name);
    } else if (boot) {
      boot.uptime_ms = p.uptime_ms;
    }
    const live = this.pending.get(name);
    const changed = live && (live.integration_services !== p.integration_services || live.memory_mb !== p.memory_mb);
    setText(row.pending, changed && this.alive ? "new settings apply at the next start" : "");
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
      const reason = alive && p.state === "crashed" && p.reason ? p.reason : "";
      setText(row.reason, reason);
      setAttr(row.reason, "title", reason || null);
      const [hbText, hbClass, hbWhy] = heartbeatView(p, alive);
      setText(row.heartbeat, hbText);
      if (row.heartbeat.className !== hbClass) row.heartbeat.className = hbClass;
      setAttr(row.heartbeatCell, "title", hbWhy);
      setText(row.heartbeatWhy, `: ${hbWhy}`);
      this.refreshPending(name);
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
