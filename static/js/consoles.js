// Partition consoles: one xterm.js terminal per open partition, in tabs, each wired to
// /ws/labs/<lab>/partitions/<name>/console (raw bytes both ways).
//
// xterm is imported lazily so the partitions table works even if the vendored assets are missing.
// The terminal is wired to the socket only once it is OPEN (wiring earlier loses early output). We do
// the wiring ourselves rather than with the attach addon so that input goes out in chunks below the
// server's 4 KiB message cap: a large paste must not get the console closed with 1009.

import { wsUrl } from "./api.js";

const XTERM = "/static/vendor/xterm/";
let xtermModules = null;

/** The terminal font: a monospace web font from our own origin (static/vendor/fonts, from npm), whose
 * underscore lies inside the cell height xterm measures (a system font's may be clipped away). */
export const TERMINAL_FONT = '"JetBrains Mono", "DejaVu Sans Mono", monospace';

/** xterm measures the cell once, when a terminal opens: the web font must be loaded before that. */
function loadFonts() {
  if (!document.fonts) return Promise.resolve();
  return Promise.all([
    document.fonts.load('14px "JetBrains Mono"', "_"),
    document.fonts.load('bold 14px "JetBrains Mono"', "_"),
  ]).catch(() => {}); // a font that cannot load leaves the fallback: still a terminal
}

function loadXterm() {
  xtermModules ??= Promise.all([
    import(`${XTERM}xterm.mjs`),
    import(`${XTERM}addon-fit.mjs`),
    loadFonts(),
  ]).then(([xterm, fit]) => ({
    Terminal: xterm.Terminal,
    FitAddon: fit.FitAddon,
  }));
  return xtermModules;
}

/** Largest input frame we send; the server closes connections whose messages exceed 4096 bytes. */
const INPUT_CHUNK = 1024;
const encoder = new TextEncoder();

function sendChunked(ws, bytes) {
  for (let i = 0; i < bytes.length; i += INPUT_CHUNK) {
    ws.send(bytes.subarray(i, i + INPUT_CHUNK));
  }
}

const CLOSE_REASONS = {
  1000: "closed",
  1001: "server going away",
  1006: "connection lost",
  1008: "disconnected (client too slow)",
  1009: "message too big",
  1011: "server error",
  4404: "partition not found",
  4503: "lab stopped",
};

/** Text of a terminal's whole buffer (scrollback included), for tests and copy-all. */
export function terminalText(term) {
  const buffer = term.buffer.active;
  const lines = [];
  for (let i = 0; i < buffer.length; i += 1) {
    const line = buffer.getLine(i);
    if (line) lines.push(line.translateToString(true));
  }
  while (lines.length && lines[lines.length - 1] === "") lines.pop();
  return lines.join("\n");
}

class ConsoleTab {
  constructor(manager, name) {
    this.manager = manager;
    this.name = name;
    this.ws = null;
    this.wiring = [];
    this.term = null;
    this.retries = 0;

    // The tab list holds only tabs (WAI-ARIA): the "×" is part of the tab for the mouse, hidden from
    // assistive technology; keyboard users close with Delete on the tab or the pane's Close button.
    this.tab = document.createElement("div");
    this.tab.className = "tab";
    this.tab.setAttribute("role", "presentation");
    this.tab.dataset.partition = name;
    this.label = document.createElement("button");
    this.label.type = "button";
    this.label.className = "tab-label";
    this.label.setAttribute("role", "tab");
    this.label.id = `console-tab-${name}`;
    this.label.setAttribute("aria-controls", `console-pane-${name}`);
    this.label.setAttribute("aria-keyshortcuts", "Delete");
    this.dot = document.createElement("span");
    this.dot.className = "dot";
    this.dot.setAttribute("aria-hidden", "true");
    const x = document.createElement("span");
    x.className = "tab-close";
    x.textContent = "×";
    x.title = `Close console of ${name}`;
    x.setAttribute("aria-hidden", "true");
    x.addEventListener("click", (event) => {
      event.stopPropagation();
      manager.close(name);
    });
    this.label.append(this.dot, name, x);
    this.label.addEventListener("click", () => manager.activate(name));
    this.label.addEventListener("keydown", (event) => manager.onTabKey(event, name));
    this.tab.append(this.label);

    this.pane = document.createElement("div");
    this.pane.className = "console-pane";
    this.pane.id = `console-pane-${name}`;
    this.pane.dataset.partition = name;
    this.pane.setAttribute("role", "tabpanel");
    this.pane.setAttribute("aria-labelledby", this.label.id);
    const bar = document.createElement("div");
    bar.className = "console-bar";
    this.statusText = document.createElement("span");
    this.statusText.className = "console-status";
    this.statusText.setAttribute("aria-live", "polite");
    const tools = document.createElement("span");
    tools.className = "console-tools";
    this.closeButton = document.createElement("button");
    this.closeButton.type = "button";
    this.closeButton.textContent = "Close";
    this.closeButton.setAttribute("aria-label", `Close console of ${name}`);
    this.closeButton.addEventListener("click", () => manager.close(name));
    this.reconnectButton = document.createElement("button");
    this.reconnectButton.type = "button";
    this.reconnectButton.textContent = "Reconnect";
    this.reconnectButton.hidden = true;
    this.reconnectButton.addEventListener("click", () => this.connect());
    tools.append(this.reconnectButton, this.closeButton);
    bar.append(this.statusText, tools);
    this.termBox = document.createElement("div");
    this.termBox.className = "term";
    this.pane.append(bar, this.termBox);
  }

  async open() {
    let mods;
    try {
      mods = await loadXterm();
    } catch (err) {
      this.setStatus(`terminal unavailable: xterm.js assets missing under ${XTERM} (run make) — ${err.message}`);
      return;
    }
    this.mods = mods;
    this.term = new mods.Terminal({
      scrollback: 5000,
      cursorBlink: true,
      convertEol: false,
      fontFamily: TERMINAL_FONT,
      fontSize: this.manager.prefs.fontSize,
      theme: THEMES[this.manager.prefs.theme],
      screenReaderMode: this.manager.screenReaderMode,
    });
    this.fit = new mods.FitAddon();
    this.term.loadAddon(this.fit);
    this.term.open(this.termBox);
    // Out of the Tab order: Tab belongs to the guest inside a terminal, so after Shift+Esc the next Tab
    // must go on to the rest of the page. The terminal is entered by its tab (Enter), Connect or a click.
    if (this.term.textarea) this.term.textarea.tabIndex = -1;
    // Ctrl+C copies when text is selected (as in Windows Terminal); otherwise it is ^C to the guest.
    this.term.attachCustomKeyEventHandler((event) => {
      if (event.type === "keydown" && event.ctrlKey && (event.key === "c" || event.key === "C") && this.term.hasSelection()) {
        this.copySelection();
        return false;
      }
      if (event.type === "keydown" && event.key === "Escape" && event.shiftKey) {
        this.label.focus(); // keyboard users leave the terminal (Tab itself belongs to the guest)
        return false;
      }
      if (event.type === "keydown" && event.ctrlKey && event.shiftKey && (event.key === "V" || event.key === "v")) {
        return false; // let the browser's paste event reach xterm (it pastes via term.paste)
      }
      return true;
    });
    this.resizeObserver = new ResizeObserver(() => this.refit());
    this.resizeObserver.observe(this.termBox);
    this.refit();
    this.connect();
  }

  copySelection() {
    const text = this.term.getSelection();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).catch(() => document.execCommand("copy"));
    } else {
      document.execCommand("copy");
    }
  }

  refit() {
    if (!this.term || this.pane.hidden) return;
    try {
      this.fit.fit();
    } catch {
      // not laid out yet
    }
  }

  setStatus(text, state) {
    this.statusText.textContent = text;
    this.dot.className = `dot ${state || ""}`;
  }

  connect() {
    if (!this.term) return;
    this.disconnect();
    this.reconnectButton.hidden = true;
    const lab = this.manager.labId;
    const url = wsUrl(`/ws/labs/${encodeURIComponent(lab)}/partitions/${encodeURIComponent(this.name)}/console`);
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.setStatus(`connecting to ${this.name}…`);
    ws.addEventListener("open", () => {
      if (this.ws !== ws) return;
      this.retries = 0;
      this.wire(ws);
      this.setStatus(`connected to ${this.name} · Ctrl+C on a selection copies · Ctrl+Shift+V pastes · Shift+Esc leaves`, "open");
      if (this.manager.active === this.name) this.term.focus();
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      const why = event.reason || CLOSE_REASONS[event.code] || `closed (${event.code})`;
      this.detach();
      this.ws = null;
      this.setStatus(`disconnected: ${why}`, "closed");
      this.reconnectButton.hidden = false;
      if (event.code === 4503) this.reconnectWhenAlive();
    });
  }

  /** After "lab stopped": reconnect by itself once the lab runs again (restarted from here or elsewhere). */
  reconnectWhenAlive() {
    if (this.retries >= 20) return;
    this.retries += 1;
    setTimeout(() => {
      if (this.ws || !this.term) return;
      if (this.manager.labAlive) this.connect();
      else this.reconnectWhenAlive();
    }, 1500);
  }

  /** Terminal <-> socket: output bytes are written as they come; keystrokes and pastes go out as
   * binary frames of at most INPUT_CHUNK bytes. */
  wire(ws) {
    const onMessage = (event) => {
      this.term.write(typeof event.data === "string" ? event.data : new Uint8Array(event.data));
    };
    ws.addEventListener("message", onMessage);
    const data = this.term.onData((text) => {
      if (ws.readyState === WebSocket.OPEN) sendChunked(ws, encoder.encode(text));
    });
    const binary = this.term.onBinary((text) => {
      if (ws.readyState !== WebSocket.OPEN) return;
      const bytes = new Uint8Array(text.length);
      for (let i = 0; i < text.length; i += 1) bytes[i] = text.charCodeAt(i) & 0xff;
      sendChunked(ws, bytes);
    });
    this.wiring = [() => ws.removeEventListener("message", onMessage), () => data.dispose(), () => binary.dispose()];
  }

  detach() {
    for (const undo of this.wiring) undo();
    this.wiring = [];
  }

  disconnect() {
    this.detach();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close();
    }
  }

  dispose() {
    this.disconnect();
    if (this.resizeObserver) this.resizeObserver.disconnect();
    if (this.term) this.term.dispose();
    this.tab.remove();
    this.pane.remove();
  }
}

export class ConsoleManager {
  constructor({ tabs, panes }) {
    this.tabsEl = tabs;
    this.panesEl = panes;
    this.emptyEl = panes.querySelector(".empty");
    this.tabs = new Map();
    this.active = null;
    this.labId = null;
    this.labAlive = true; // kept up to date from telemetry by main.js
    this.screenReaderMode = false;
    this.prefs = { fontSize: 14, theme: "dark" };
  }

  /** Text size and theme for every console, now and later. */
  setPrefs({ fontSize, theme }) {
    if (Number.isFinite(fontSize) && fontSize >= 8 && fontSize <= 40) this.prefs.fontSize = fontSize;
    if (theme in THEMES) this.prefs.theme = theme;
    this.panesEl.dataset.theme = this.prefs.theme;
    for (const tab of this.tabs.values()) {
      if (!tab.term) continue;
      tab.term.options.fontSize = this.prefs.fontSize;
      tab.term.options.theme = THEMES[this.prefs.theme];
      tab.refit();
    }
  }

  /** xterm's screen-reader mode (an accessible live text of the terminal) for every console, now and later. */
  setScreenReaderMode(on) {
    this.screenReaderMode = Boolean(on);
    for (const tab of this.tabs.values()) {
      if (tab.term) tab.term.options.screenReaderMode = this.screenReaderMode;
    }
  }

  /** Open (or focus) the console of ``name``, scrolled into view: keyboard focus goes to its terminal,
   * which must be on screen (xterm also draws nothing while it is off-screen). */
  async open(name, { reveal = true } = {}) {
    if (reveal) this.reveal();
    let tab = this.tabs.get(name);
    if (!tab) {
      tab = new ConsoleTab(this, name);
      this.tabs.set(name, tab);
      this.tabsEl.append(tab.tab);
      this.panesEl.append(tab.pane);
      if (this.emptyEl) this.emptyEl.hidden = true;
      this.activate(name);
      this.persist();
      if (reveal) this.reveal(); // again: the tab bar has grown
      await tab.open();
    } else {
      this.activate(name);
      if (!tab.ws) tab.connect();
    }
    return tab;
  }

  /** Remember the open consoles for this tab of the browser, so a reload opens them again. */
  persist() {
    try {
      sessionStorage.setItem(OPEN_KEY, JSON.stringify({ open: [...this.tabs.keys()], active: this.active }));
    } catch {
      // storage disabled: consoles are simply not reopened after a reload
    }
  }

  /** Reopen the consoles that were open before a reload (the active one last, so it is in front). */
  restore() {
    let saved = null;
    try {
      saved = JSON.parse(sessionStorage.getItem(OPEN_KEY) || "null");
    } catch {
      saved = null;
    }
    if (!saved || !Array.isArray(saved.open)) return;
    const names = saved.open.filter((n) => typeof n === "string" && n !== saved.active);
    if (saved.open.includes(saved.active)) names.push(saved.active);
    for (const name of names) this.open(name, { reveal: false });
  }

  /** Scroll the consoles panel into view (the least scrolling that shows it). */
  reveal() {
    const panel = this.panesEl.closest("section") || this.panesEl;
    panel.scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  activate(name) {
    this.active = name;
    if (this.tabs.has(name)) this.persist();
    for (const [tabName, tab] of this.tabs) {
      const on = tabName === name;
      tab.pane.hidden = !on;
      tab.tab.classList.toggle("active", on);
      tab.label.setAttribute("aria-selected", on ? "true" : "false");
      tab.label.tabIndex = on ? 0 : -1;
      if (on) {
        tab.refit();
        if (tab.term) tab.term.focus();
      }
    }
  }

  /** Arrow keys move between console tabs (WAI-ARIA tabs pattern). */
  onTabKey(event, name) {
    if (event.key === "Delete") {
      event.preventDefault();
      this.close(name);
      const next = this.tabs.get(this.active);
      if (next) next.label.focus();
      return;
    }
    if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
    const names = [...this.tabs.keys()];
    const step = event.key === "ArrowRight" ? 1 : -1;
    const next = names[(names.indexOf(name) + step + names.length) % names.length];
    event.preventDefault();
    this.activate(next);
    this.tabs.get(next).label.focus();
  }

  close(name) {
    const tab = this.tabs.get(name);
    if (!tab) return;
    tab.dispose();
    this.tabs.delete(name);
    if (this.active === name) {
      const next = this.tabs.keys().next();
      if (!next.done) this.activate(next.value);
      else this.active = null;
    }
    if (!this.tabs.size && this.emptyEl) this.emptyEl.hidden = false;
    this.persist();
  }

  /** Open the console of ``name`` and type ``text`` + Enter into it once connected (clickable commands). */
  async type(name, text) {
    const tab = await this.open(name);
    const send = () => {
      if (tab.ws && tab.ws.readyState === WebSocket.OPEN) sendChunked(tab.ws, encoder.encode(`${text}\r`));
    };
    if (tab.ws && tab.ws.readyState === WebSocket.OPEN) send();
    else if (tab.ws) tab.ws.addEventListener("open", () => setTimeout(send, 0), { once: true });
    if (tab.term) tab.term.focus();
  }

  /** Reconnect every open console, e.g. after the lab was restarted. */
  reconnectAll() {
    for (const tab of this.tabs.values()) tab.connect();
  }

  /** Reconnect the consoles whose connection dropped, e.g. when their server went away and the session's
   * lab now runs on another one (several servers behind a balancer). */
  reconnectDropped() {
    for (const tab of this.tabs.values()) if (tab.term && !tab.ws) tab.connect();
  }

  text(name) {
    const tab = this.tabs.get(name);
    return tab && tab.term ? terminalText(tab.term) : "";
  }

  terminal(name) {
    const tab = this.tabs.get(name);
    return tab ? tab.term : null;
  }
}

/** Terminal themes. "contrast": white on black with a yellow cursor and selection, for low vision
 * (contrast 21:1; every ANSI colour at least 7:1 on black). */
const THEMES = {
  dark: { background: "#1e1e1e", foreground: "#e6e6e6", cursor: "#e6e6e6" },
  light: {
    background: "#ffffff", foreground: "#1b1f24", cursor: "#1b1f24", cursorAccent: "#ffffff",
    selectionBackground: "#b3d4fc", black: "#1b1f24", red: "#a1260d", green: "#116329", yellow: "#7a4d00",
    blue: "#0a4fa0", magenta: "#8a2a8a", cyan: "#0b6470", white: "#5b6470",
  },
  contrast: {
    background: "#000000", foreground: "#ffffff", cursor: "#ffff00", cursorAccent: "#000000",
    selectionBackground: "#ffff00", selectionForeground: "#000000", red: "#ff8080", green: "#80ff80",
    yellow: "#ffff00", blue: "#a0c8ff", magenta: "#ffa0ff", cyan: "#80ffff", white: "#ffffff",
    brightBlack: "#c0c0c0",
  },
};
const PREFS_KEY = "hyperlab.consoles.prefs";

/** Wire the "Text size" and "Theme" selects to the consoles; remembered in this browser. */
export function bindTerminalPrefs(manager, sizeSelects, themeSelects) {
  let saved = {};
  try {
    saved = JSON.parse(localStorage.getItem(PREFS_KEY) || "{}") || {};
  } catch {
    saved = {};
  }
  manager.setPrefs({ fontSize: Number(saved.fontSize), theme: saved.theme });
  const sync = () => {
    for (const s of sizeSelects) s.value = String(manager.prefs.fontSize);
    for (const s of themeSelects) s.value = manager.prefs.theme;
  };
  sync();
  const save = () => {
    try {
      localStorage.setItem(PREFS_KEY, JSON.stringify(manager.prefs));
    } catch {
      // not remembered, still applied
    }
  };
  for (const s of sizeSelects) {
    s.addEventListener("change", () => {
      manager.setPrefs({ fontSize: Number(s.value) });
      sync();
      save();
    });
  }
  for (const s of themeSelects) {
    s.addEventListener("change", () => {
      manager.setPrefs({ theme: s.value });
      sync();
      save();
    });
  }
}

const SR_KEY = "hyperlab.consoles.screenReaderMode";
/** The consoles open in this browser tab, per page (sessionStorage: a reload reopens them, a new tab does not). */
const OPEN_KEY = `hyperlab.consoles.open.${location.pathname}`;

/** Wire "Screen reader mode" checkboxes to the consoles; the choice is remembered in this browser. */
export function bindScreenReaderToggle(manager, checkboxes) {
  let on = false;
  try {
    on = localStorage.getItem(SR_KEY) === "1";
  } catch {
    on = false;
  }
  manager.setScreenReaderMode(on);
  for (const box of checkboxes) {
    box.checked = on;
    box.addEventListener("change", () => {
      manager.setScreenReaderMode(box.checked);
      for (const other of checkboxes) other.checked = box.checked;
      try {
        localStorage.setItem(SR_KEY, box.checked ? "1" : "0");
      } catch {
        // not remembered, still applied
      }
    });
  }
}
