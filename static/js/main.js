// Manager page entry point: gets (or creates) this session's lab, keeps the partitions table, the I/O
// panel and the counters panel live from the telemetry stream, and opens consoles and the Settings
// dialog on demand.

import { ApiError, diskUrl, ensureLab, partitionAction, putSettings, restartLab } from "./api.js";
import { ConsoleManager } from "./consoles.js";
import { CountersPanel } from "./counters.js";
import { IoPanel } from "./io.js";
import { PartitionTable } from "./partitions.js";
import { SettingsDialog } from "./settings.js";
import { TelemetryStream } from "./telemetry.js";

const $ = (id) => document.getElementById(id);

const statusEl = $("status");
function say(message, isError = false) {
  statusEl.textContent = message;
  statusEl.classList.toggle("error", isError);
}

const ACTION_WORDS = {
  start: "Starting",
  turn_off: "Turning off",
  shut_down: "Shutting down",
  reset: "Resetting",
  pause: "Pausing",
  resume: "Resuming",
};

const consoles = new ConsoleManager({ tabs: $("console-tabs"), panes: $("console-panes") });
const counters = new CountersPanel({
  tbody: document.querySelector("#counters tbody"),
  title: $("counters-of"),
  transitions: $("transitions"),
});
const io = new IoPanel({ table: $("io"), left: $("io-left"), right: $("io-right") });
const settings = new SettingsDialog($("settings-dialog"), {
  save: (name, changes) => putSettings(currentLab, name, changes),
  saved: (before, after) => {
    table.settingsSaved(before, after);
    const booted = ["running", "paused", "starting", "stopping"].includes(before.state);
    say(`${after.name}: settings saved; they take effect at the next start${booted ? ` (restart ${after.name} to apply them)` : ""}.`);
  },
});

/** Download through the browser's own download manager (the server streams the file). */
function downloadDisk(name) {
  const link = document.createElement("a");
  link.href = diskUrl(currentLab, name);
  link.download = `${currentLab}-${name}.vhd`;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  say(`Downloading the disk of ${name} (${currentLab}-${name}.vhd)…`);
}

const table = new PartitionTable(document.querySelector("#partitions tbody"), {
  onSelect: (name) => {
    counters.show(name);
    if (lastSnapshot) counters.update(lastSnapshot);
  },
  onConnect: (name) => consoles.open(name),
  onSettings: (partition, opener) => settings.open(partition, opener),
  onDownload: (name) => downloadDisk(name),
  onAction: async (name, action) => {
    say(`${ACTION_WORDS[action] || action} ${name}…`);
    try {
      const partition = await partitionAction(currentLab, name, action);
      say(`${name}: ${partition.state}`);
      return partition;
    } catch (err) {
      say(`${name}: ${err.message}`, true);
      return null;
    }
  },
});

let currentLab = null;
let lastSnapshot = null;
let wasAlive = true;

function showLab(lab) {
  const changed = lab.id !== currentLab;
  currentLab = lab.id;
  consoles.labId = lab.id;
  $("lab-id").textContent = lab.id;
  $("lab-design").textContent = lab.design || "—";
  if (changed && consoles.tabs.size) consoles.reconnectAll();
}

/** The lab to watch; asked again after every telemetry drop, so a restarted server hands out a fresh lab. */
async function labId() {
  try {
    const lab = await ensureLab();
    showLab(lab);
    return lab.id;
  } catch (err) {
    const hint = err instanceof ApiError && err.status === 503 ? " (the server is full: try again later)" : "";
    say(`Cannot get a lab: ${err.message}${hint}`, true);
    throw err;
  }
}

function showStopped(alive, error) {
  consoles.labAlive = alive;
  $("stopped-banner").hidden = alive;
  if (!alive) {
    const detail = error && error.toLowerCase() !== "lab stopped" ? ` (${error})` : "";
    $("stopped-text").textContent = `The lab process is no longer running${detail}.`;
  }
  if (alive && !wasAlive) {
    say("Lab running again.");
    consoles.reconnectAll();
  }
  wasAlive = alive;
}

function onSnapshot(snapshot) {
  lastSnapshot = snapshot;
  window.__hyperlab.snapshot = snapshot;
  const alive = snapshot.alive !== false;
  table.update(snapshot.partitions || {}, snapshot.counters || {}, alive);
  counters.update(snapshot);
  io.update(snapshot);
  showStopped(alive, snapshot.error || snapshot.stopped_reason);
}

function onLink(state) {
  const el = $("link-state");
  el.textContent = state;
  el.className = `link link-${state}`;
}

$("restart-lab").addEventListener("click", async () => {
  const button = $("restart-lab");
  button.disabled = true;
  say("Restarting the lab…");
  try {
    showLab(await restartLab(currentLab));
    say("Lab restarted.");
  } catch (err) {
    say(`Restart failed: ${err.message}`, true);
  } finally {
    button.disabled = false;
  }
});

// Test and debugging hook: read terminals and state without scraping the DOM.
window.__hyperlab = {
  get labId() {
    return currentLab;
  },
  snapshot: null,
  consoles,
  table,
  io,
  settings,
  openConsole: (name) => consoles.open(name),
  consoleText: (name) => consoles.text(name),
};

async function boot() {
  try {
    const lab = await ensureLab();
    showLab(lab);
    const partitions = Object.fromEntries((lab.partitions || []).map((p) => [p.name, p]));
    table.update(partitions, {}, lab.alive !== false);
    showStopped(lab.alive !== false, lab.stopped_reason);
  } catch (err) {
    say(`Cannot get a lab: ${err.message}`, true);
  }
  new TelemetryStream(labId, { onSnapshot, onLink }).start();
}

boot();
