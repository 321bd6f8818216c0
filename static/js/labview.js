// The live lab view shared by the home page's free lab and the lesson page: gets (or creates) this
// session's lab, keeps the partitions table, the counters panel (and the I/O panel where the page has
// one) live from the telemetry stream, and opens consoles and the Settings dialog on demand.

import { diskUrl, ensureLab, partitionAction, putSettings, restartLab } from "./api.js";
import { bindScreenReaderToggle, bindTerminalPrefs, ConsoleManager } from "./consoles.js";
import { CountersPanel } from "./counters.js";
import { DesignsPanel } from "./designs.js";
import { IoPanel } from "./io.js";
import { PartitionTable } from "./partitions.js";
import { SettingsDialog } from "./settings.js";
import { TelemetryStream } from "./telemetry.js";
import { TransitionsPanel } from "./transitions.js";

const $ = (id) => document.getElementById(id);

const ACTION_WORDS = {
  start: "Starting",
  turn_off: "Turning off",
  shut_down: "Shutting down",
  reset: "Resetting",
  pause: "Pausing",
  resume: "Resuming",
};

export class LabView {
  /**
   * @param {{onSnapshot?: (s: object) => void, onLab?: (lab: object) => void}} hooks
   *   onSnapshot: every telemetry snapshot (after the panels); onLab: the lab description when it changes
   */
  constructor(hooks = {}) {
    this.hooks = hooks;
    this.currentLab = null;
    this.lastSnapshot = null;
    this.wasAlive = true;
    this.statusEl = $("status");
    this.consoles = new ConsoleManager({ tabs: $("console-tabs"), panes: $("console-panes") });
    bindScreenReaderToggle(this.consoles, [...document.querySelectorAll(".screen-reader-mode")]);
    bindTerminalPrefs(this.consoles, [...document.querySelectorAll(".term-font-size")],
      [...document.querySelectorAll(".term-theme")]);
    this.counters = new CountersPanel({
      tbody: document.querySelector("#counters tbody"),
      title: $("counters-of"),
    });
    this.transitions = new TransitionsPanel({
      tbody: document.querySelector("#transitions tbody"),
      partition: $("transitions-partition"),
      kind: $("transitions-kind"),
      pause: $("transitions-pause"),
      summary: $("transitions-summary"),
    });
    this.io = $("io") ? new IoPanel({ table: $("io"), left: $("io-left"), right: $("io-right") }) : null;
    this.settings = new SettingsDialog($("settings-dialog"), {
      save: (name, changes) => putSettings(this.currentLab, name, changes),
      saved: (before, after) => {
        this.table.settingsSaved(before, after);
        const booted = ["running", "paused", "starting", "stopping"].includes(before.state);
        this.say(`${after.name}: settings saved; they take effect at the next start${booted ? ` (restart ${after.name} to apply them)` : ""}.`);
      },
    });
    this.table = new PartitionTable(document.querySelector("#partitions tbody"), {
      onSelect: (name) => {
        this.counters.show(name);
        this.transitions.follow(name);
        if (this.lastSnapshot) this.counters.update(this.lastSnapshot);
      },
      onConnect: (name) => this.consoles.open(name),
      onSettings: (partition, opener) => this.settings.open(partition, opener),
      onDownload: (name) => this.downloadDisk(name),
      onAction: (name, action) => this.action(name, action),
    });
    $("restart-lab").addEventListener("click", () => this.restart());
    this.designs = $("designs-panel") ? new DesignsPanel($("designs-panel"), {
      labId: () => this.currentLab,
      showLab: (lab) => this.showLab(lab),
      say: (text, isError) => this.say(text, isError),
      reconnect: () => this.consoles.reconnectAll(),
    }) : null;

    // Test and debugging hook: read terminals and state without scraping the DOM.
    window.__hyperlab = Object.assign(window.__hyperlab || {}, {
      snapshot: null,
      consoles: this.consoles,
      table: this.table,
      io: this.io,
      transitions: this.transitions,
      designs: this.designs,
      settings: this.settings,
      openConsole: (name) => this.consoles.open(name),
      consoleText: (name) => this.consoles.text(name),
    });
    Object.defineProperty(window.__hyperlab, "labId", { get: () => this.currentLab, configurable: true });
  }

  say(message, isError = false) {
    this.statusEl.textContent = message;
    this.statusEl.classList.toggle("error", isError);
  }

  /** Run a partition action, saying what happens in the status line; answers the partition or null. */
  async action(name, action) {
    this.say(`${ACTION_WORDS[action] || action} ${name}…`);
    const before = this.table.last?.get(name);
    try {
      const partition = await partitionAction(this.currentLab, name, action);
      this.say(`${name}: ${partition.state}`);
      this.following = {
        name, said: this.statusEl.textContent, answered: partition.state,
        before: before ? `${before.state}|${before.reason ?? ""}` : null,
      };
      return partition;
    } catch (err) {
      this.say(`${name}: ${err.message}`, true);
      return null;
    }
  }

  /** Download through the browser's own download manager (the server streams the file). */
  downloadDisk(name) {
    const link = document.createElement("a");
    link.href = diskUrl(this.currentLab, name);
    link.download = `${this.currentLab}-${name}.vhd`;
    link.hidden = true;
    document.body.append(link);
    link.click();
    link.remove();
    this.say(`Downloading the disk of ${name} (${this.currentLab}-${name}.vhd)…`);
  }

  showLab(lab) {
    const changed = lab.id !== this.currentLab;
    this.currentLab = lab.id;
    this.consoles.labId = lab.id;
    $("lab-id").textContent = lab.id;
    $("lab-design").textContent = lab.design || "—";
    if (changed && this.consoles.tabs.size) this.consoles.reconnectAll();
    if (this.designs) this.designs.showLab(lab);
    if (this.hooks.onLab) this.hooks.onLab(lab);
  }

  /** Show a lab description at once (before the first telemetry frame). */
  showDescription(lab) {
    this.showLab(lab);
    const partitions = Object.fromEntries((lab.partitions || []).map((p) => [p.name, p]));
    this.table.update(partitions, {}, lab.alive !== false);
    this.showStopped(lab.alive !== false, lab.stopped_reason);
  }

  /** The lab to watch; asked again after every telemetry drop, so a restarted server hands out a fresh lab. */
  async labId() {
    try {
      const lab = await ensureLab();
      this.showLab(lab);
      return lab.id;
    } catch (err) {
      this.say(`Cannot get a lab: ${err.message}`, true);  // a full server says when to try again
      throw err;
    }
  }

  showStopped(alive, error) {
    this.consoles.labAlive = alive;
    $("stopped-banner").hidden = alive;
    if (!alive) {
      const detail = error && error.toLowerCase() !== "lab stopped" ? ` (${error})` : "";
      $("stopped-text").textContent = `The lab process is no longer running${detail}.`;
    }
    if (alive && !this.wasAlive) {
      this.say("Lab running again.");
      this.consoles.reconnectAll();
    }
    this.wasAlive = alive;
  }

  /** After an action the status line follows the partition's state ("child1: stopping" → "child1: off")
   * until it settles, unless something else was said meanwhile. */
  followState(partitions) {
    const f = this.following;
    if (!f) return;
    const p = partitions[f.name];
    if (!p || this.statusEl.textContent !== f.said) {
      this.following = null;
      return;
    }
    // a snapshot taken before the action (still the state it left, e.g. "crashed" before a start)
    if (p.state !== f.answered && `${p.state}|${p.reason ?? ""}` === f.before) return;
    const text = p.state === "crashed" && p.reason ? `${f.name}: crashed: ${p.reason}` : `${f.name}: ${p.state}`;
    if (text !== f.said) {
      this.say(text, p.state === "crashed");
      f.said = text;
    }
    if (!["starting", "stopping"].includes(p.state)) this.following = null;
  }

  onSnapshot(snapshot) {
    this.lastSnapshot = snapshot;
    this.followState(snapshot.partitions || {});
    window.__hyperlab.snapshot = snapshot;
    const alive = snapshot.alive !== false;
    this.table.update(snapshot.partitions || {}, snapshot.counters || {}, alive);
    this.counters.update(snapshot);
    this.transitions.update(snapshot);
    if (this.io) this.io.update(snapshot);
    if (this.designs) this.designs.update(snapshot);
    this.showStopped(alive, snapshot.error || snapshot.stopped_reason);
    if (this.hooks.onSnapshot) this.hooks.onSnapshot(snapshot);
  }

  onLink(state) {
    const el = $("link-state");
    el.textContent = state;
    el.className = `link link-${state}`;
    // Back after a drop: the telemetry link asked for the lab again first, so it runs (perhaps on another
    // server now, its old one gone): the consoles that dropped with it reconnect to it.
    if (state === "down") this.linkLost = true;
    if (state === "live" && this.linkLost) {
      this.linkLost = false;
      this.consoles.reconnectDropped();
    }
  }

  async restart() {
    const button = $("restart-lab");
    button.disabled = true;
    this.say("Restarting the lab…");
    try {
      this.showLab(await restartLab(this.currentLab));
      this.say("Lab restarted.");
    } catch (err) {
      this.say(`Restart failed: ${err.message}`, true);
    } finally {
      button.disabled = false;
    }
  }

  /** Show ``lab`` (or get this session's lab), then follow its telemetry. */
  async start(lab = null) {
    try {
      this.showDescription(lab || (await ensureLab()));
    } catch (err) {
      this.say(`Cannot get a lab: ${err.message}`, true);
    }
    this.consoles.restore(); // the consoles that were open before a reload
    this.telemetry = new TelemetryStream(() => this.labId(), {
      onSnapshot: (s) => this.onSnapshot(s),
      onLink: (state) => this.onLink(state),
    });
    this.telemetry.start();
  }
}
