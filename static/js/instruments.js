// The lesson page's lab panels (Counters, Transitions, I/O side by side) in one tab list, so that the
// panel a step talks about is in view beside the consoles; the step chooses it (``watch.panel``).

export class Instruments {
  /** @param {HTMLElement} tablist element with role="tablist" whose tabs carry data-panel */
  constructor(tablist) {
    this.tabs = [...tablist.querySelectorAll('[role="tab"]')];
    for (const tab of this.tabs) {
      tab.addEventListener("click", () => this.show(tab.dataset.panel));
      tab.addEventListener("keydown", (event) => this.onKey(event, tab));
    }
  }

  get current() {
    return this.tabs.find((tab) => tab.getAttribute("aria-selected") === "true")?.dataset.panel ?? null;
  }

  /** Show one panel ("counters" | "transitions" | "io"); unknown names are ignored. */
  show(panel, { focus = false } = {}) {
    if (!this.tabs.some((tab) => tab.dataset.panel === panel)) return;
    for (const tab of this.tabs) {
      const on = tab.dataset.panel === panel;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      tab.tabIndex = on ? 0 : -1;
      tab.classList.toggle("active", on);
      document.getElementById(tab.getAttribute("aria-controls")).hidden = !on;
      if (on && focus) tab.focus();
    }
  }

  /** Arrow keys, Home and End move between the tabs (WAI-ARIA tabs pattern, automatic activation). */
  onKey(event, tab) {
    const i = this.tabs.indexOf(tab);
    const n = this.tabs.length;
    const to = { ArrowRight: (i + 1) % n, ArrowLeft: (i - 1 + n) % n, Home: 0, End: n - 1 }[event.key];
    if (to === undefined) return;
    event.preventDefault();
    this.show(this.tabs[to].dataset.panel, { focus: true });
  }
}
