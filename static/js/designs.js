// The design panel of a lab: which hypervisor design runs it (micro-kernel, monolithic, hosted), a
// switch that restarts the lab in another design (disks kept), the live architecture picture, the
// mode switches each kind of operation costs, the trusted code of the design, and a menu to inject a
// fault into one component and see who goes down.
//
// Everything shown comes from the lab: its description (GET /api/labs/<id>: design, components,
// tcb) and the telemetry snapshots (counters, hops). docs/api.md "Designs and faults".

import { ApiError, getLab, injectFault, setDesign } from "./api.js";
import { ArchitecturePicture, DESIGN_LABELS } from "./architecture.js";
import { formatNumber } from "./partitions.js";

export const DESIGNS = ["microkernel", "monolithic", "hosted"];

const DOMAIN_LABELS = {
  hypervisor: "Hypervisor",
  root_kernel: "Root kernel",
  root_user: "Root user mode",
};
const HOSTED_DOMAIN_LABELS = { root_kernel: "Host kernel", root_user: "Host user mode" };

/** Per operation: [label, the counter that counts the operations of a partition]. */
export const OPERATIONS = [
  ["per sector written", "disk.sectors_written"],
  ["per port access", "exits.io_port"],
  ["per VMBus packet", "vmbus.packets_out"],
];

/** Who a fault in this component should take down, by the design's rules (issue 7, part 4):
 * the hypervisor takes every partition; the root's kernel takes every partition where the root is
 * the host of the others' I/O (micro-kernel, hosted), only the root in the monolithic design; a
 * worker process or VMM application in user mode takes only its own partition. */
export function expectedBlast(design, component, partitions, root = "root") {
  const all = [...partitions];
  if (component.domain === "hypervisor") return all;
  if (component.domain === "root_kernel") return design === "monolithic" ? [root] : all;
  const owner = String(component.name).split(".")[0];
  return all.includes(owner) ? [owner] : [root];
}

function domainLabel(design, domain) {
  return (design === "hosted" && HOSTED_DOMAIN_LABELS[domain]) || DOMAIN_LABELS[domain] || domain;
}

function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : String(v));
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

export class DesignsPanel {
  /**
   * @param {HTMLElement} mount the page's #designs-panel
   * @param {{labId: () => string|null, showLab: (lab: object) => void, say: (text: string, err?: boolean) => void,
   *          reconnect: () => void}} lab what the panel needs of the page's lab view
   */
  constructor(mount, lab) {
    this.mount = mount;
    this.lab = lab;
    this.fixedByLesson = false; // set by the lesson page when its lesson fixes the design
    this.description = null;
    this.partitions = [];
    this.baseline = null; // counters when the counts were last reset
    this.busy = false;
    this.render();
  }

  render() {
    const m = this.mount;
    m.replaceChildren();
    m.setAttribute("aria-labelledby", "designs-title");
    this.designSelect = h("select", { id: "design-select", "aria-describedby": "design-note" },
      ...DESIGNS.map((d) => h("option", { value: d, text: DESIGN_LABELS[d] })));
    this.switchButton = h("button", { type: "button", id: "design-switch", onclick: () => this.askSwitch() },
      "Switch design…");
    this.designNote = h("p", { id: "design-note", class: "hint" });
    this.current = h("strong", { id: "design-current", text: "…" });
    const head = h("div", { class: "designs-head" },
      h("h2", { id: "designs-title" }, "Design ", h("span", { class: "sub" }, "where the hypervisor runs what")),
      h("div", { class: "design-control" },
        h("span", {}, "Running: "), this.current,
        h("label", { for: "design-select" }, "Design"), this.designSelect, this.switchButton));

    const pictureBox = h("div", { class: "arch-box" });
    this.picture = new ArchitecturePicture(pictureBox);
    this.resetButton = h("button", { type: "button", id: "arch-reset", class: "quiet", onclick: () => this.resetCounts() },
      "Reset counts");

    this.modeBody = h("tbody");
    const modeTable = h("table", { id: "mode-switches", class: "designs-table" },
      h("caption", { class: "visually-hidden",
        text: "Mode switches per operation for each child partition, since the counts were reset" }),
      h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Partition" }), h("th", { scope: "col", text: "Operation" }),
        h("th", { scope: "col", class: "num", text: "Operations" }), h("th", { scope: "col", class: "num", text: "Mode switches" }),
        h("th", { scope: "col", class: "num", text: "Per operation" }))),
      this.modeBody);

    this.tcbBody = h("tbody");
    this.surface = h("p", { class: "hint", id: "attack-surface" });
    this.reference = h("ul", { class: "tcb-reference", id: "tcb-reference" });
    const tcbTable = h("table", { id: "tcb", class: "designs-table" },
      h("caption", { class: "visually-hidden", text: "Trusted code of this design, per privilege domain" }),
      h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Domain" }), h("th", { scope: "col", class: "num", text: "Lines" }),
        h("th", { scope: "col", class: "num", text: "Bytes" }), h("th", { scope: "col", text: "Components" }))),
      this.tcbBody);

    this.faultSelect = h("select", { id: "fault-component" });
    this.faultButton = h("button", { type: "button", id: "fault-inject", class: "danger", onclick: () => this.askFault() },
      "Inject fault…");
    this.faultResult = h("p", { id: "fault-result", class: "fault-result", role: "status", "aria-live": "polite" });

    this.dialog = h("dialog", { id: "designs-dialog", "aria-labelledby": "designs-dialog-title",
      "aria-describedby": "designs-dialog-text" });
    this.dialogTitle = h("h2", { id: "designs-dialog-title" });
    this.dialogText = h("div", { id: "designs-dialog-text" });
    this.dialogOk = h("button", { type: "submit", id: "designs-dialog-ok", class: "primary", value: "ok" });
    const cancel = h("button", { type: "button", id: "designs-dialog-cancel", onclick: () => this.dialog.close("cancel") },
      "Cancel");
    this.dialog.append(h("form", { method: "dialog" }, this.dialogTitle, this.dialogText,
      h("div", { class: "buttons" }, cancel, this.dialogOk)));

    m.append(head, this.designNote,
      h("div", { class: "designs-grid" },
        h("section", { class: "designs-picture", "aria-labelledby": "arch-title" },
          h("div", { class: "designs-subhead" }, h("h3", { id: "arch-title", text: "Architecture, live" }), this.resetButton),
          pictureBox),
        h("div", { class: "designs-side" },
          h("section", { "aria-labelledby": "mode-title" },
            h("h3", { id: "mode-title", text: "Mode switches per operation" }),
            h("div", { class: "designs-scroll", tabindex: "0", role: "region", "aria-label": "Mode switches (scrolls)" }, modeTable),
            h("p", { class: "hint", text: "Every change of privilege level (user, kernel, hypervisor) or world made for the "
              + "partition, divided by its operations since the counts were reset. Run one workload at a time." })),
          h("section", { "aria-labelledby": "tcb-title" },
            h("h3", { id: "tcb-title", text: "Trusted code" }),
            h("div", { class: "designs-scroll", tabindex: "0", role: "region", "aria-label": "Trusted code (scrolls)" }, tcbTable),
            this.surface,
            h("details", { class: "tcb-cited" }, h("summary", { text: "Published figures (cited, not measured here)" }), this.reference)),
          h("section", { "aria-labelledby": "fault-title", class: "fault-menu" },
            h("h3", { id: "fault-title", text: "Inject a fault" }),
            h("div", { class: "fault-row" }, h("label", { for: "fault-component", text: "Component" }), this.faultSelect,
              this.faultButton),
            this.faultResult))),
      this.dialog);
    this.updateControls();
  }

  /** The lesson page says whether its lesson fixes the design (lab.design_switch not set). */
  setFixedByLesson(title) {
    this.fixedByLesson = Boolean(title);
    this.fixedTitle = title || "";
    this.updateControls();
  }

  updateControls() {
    const design = this.description?.design;
    this.current.textContent = DESIGN_LABELS[design] || design || "…";
    // Follow the lab only when its design changed: a refreshed description must not undo a choice the
    // student has made in the select but not yet confirmed.
    if (design && !this.busy && design !== this.shownDesign) {
      this.designSelect.value = design;
      this.shownDesign = design;
    }
    const alive = this.description ? this.description.alive !== false : false;
    this.switchButton.disabled = this.busy || this.fixedByLesson || !alive;
    this.designSelect.disabled = this.busy || this.fixedByLesson;
    this.faultButton.disabled = this.busy || !alive || !this.faultSelect.options.length;
    this.designNote.textContent = this.fixedByLesson
      ? `The lesson "${this.fixedTitle}" runs in this design; open the free lab (home page) to switch.`
      : "Switching restarts every partition in the other design; the disks are kept.";
  }

  /** The page's lab description changed (first load, restart, design switch). */
  async showLab(lab) {
    if (!lab) return;
    // The picture needs the components: a description without them (POST /api/labs) is asked again.
    const described = Array.isArray(lab.components) ? lab : (await this.fetchDescription(lab.id)) || lab;
    this.setDescription(described);
  }

  async fetchDescription(id) {
    try {
      return await getLab(id);
    } catch {
      return null;
    }
  }

  setDescription(lab) {
    const designChanged = this.description?.design !== lab.design;
    this.description = lab;
    this.partitions = (lab.partitions || []).map((p) => p.name);
    this.root = (lab.partitions || []).find((p) => p.role === "root")?.name || "root";
    this.picture.setLab({ design: lab.design, partitions: lab.partitions || [], components: lab.components || [] });
    if (designChanged) this.baseline = null;
    this.showTcb(lab);
    this.showFaultMenu(lab);
    this.updateControls();
  }

  /** A telemetry snapshot: the picture's hops and the per-operation figures. */
  update(snapshot) {
    if (this.description && snapshot.design && snapshot.design !== this.description.design && !this.busy) {
      // The lab runs another design than we last heard (switched elsewhere): describe it again, once.
      if (!this.refetching) {
        this.refetching = true;
        this.fetchDescription(this.lab.labId()).then((lab) => {
          this.refetching = false;
          if (lab) this.setDescription(lab);
        });
      }
      return;
    }
    if (this.description && typeof snapshot.alive === "boolean" && snapshot.alive !== (this.description.alive !== false)) {
      this.description = { ...this.description, alive: snapshot.alive };
      this.updateControls();
    }
    this.picture.update(snapshot);
    this.showModeSwitches(snapshot.counters || {});
  }

  resetCounts() {
    this.baseline = null;
    this.picture.resetCounts();
    this.modeBody.replaceChildren();
  }

  showModeSwitches(counters) {
    // A fresh lab process (a restart) counts from zero again: so do we.
    const restarted = this.baseline !== null
      && Object.entries(this.baseline).some(([name, value]) => (counters[name] ?? 0) < value);
    if (this.baseline === null || restarted) this.baseline = { ...counters };
    const delta = (name) => (counters[name] || 0) - (this.baseline[name] || 0);
    const rows = [];
    for (const p of this.partitions.filter((n) => n !== this.root)) {
      const switches = delta(`${p}.mode_switches`);
      for (const [label, op] of OPERATIONS) {
        const ops = delta(`${p}.${op}`);
        if (ops <= 0) continue;
        const per = switches / ops;
        rows.push(h("tr", { "data-partition": p, "data-op": op },
          h("td", { class: "mono", text: p }), h("td", { text: label }), h("td", { class: "num", text: formatNumber(ops) }),
          h("td", { class: "num", text: formatNumber(switches) }),
          h("td", { class: "num per-op", text: per >= 10 ? formatNumber(Math.round(per)) : per.toFixed(1) })));
      }
    }
    if (!rows.length) {
      rows.push(h("tr", {}, h("td", { colspan: "5", class: "empty",
        text: "No disk writes, port accesses or VMBus packets since the counts were reset: try dd write 8 in child2." })));
    }
    const text = rows.map((r) => r.textContent).join("|");
    if (text !== this.lastModeText) {
      this.lastModeText = text;
      this.modeBody.replaceChildren(...rows);
    }
  }

  showTcb(lab) {
    const design = lab.design;
    const tcb = lab.tcb || {};
    const byDomain = {};
    for (const c of lab.components || []) (byDomain[c.domain] ||= []).push(c.name);
    const rows = Object.entries(tcb).map(([domain, size]) => h("tr", { "data-domain": domain },
      h("th", { scope: "row", text: domainLabel(design, domain) }),
      h("td", { class: "num", text: formatNumber(size.lines ?? 0) }),
      h("td", { class: "num", text: formatNumber(size.bytes ?? 0) }),
      h("td", { class: "tcb-components", text: (byDomain[domain] || []).join(", ") })));
    if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: "4", class: "empty", text: "Not reported by this server." })));
    this.tcbBody.replaceChildren(...rows);
    const surface = lab.attack_surface || [];
    const surfaceBy = {};
    for (const c of surface) (surfaceBy[c.domain] ||= []).push(c.name);
    this.surface.textContent = surface.length
      ? `Code that parses bytes a child controls (the attack surface): ${Object.entries(surfaceBy)
        .map(([domain, names]) => `${domainLabel(design, domain)}: ${names.join(", ")}`).join("; ")}.`
      : "";
    this.reference.replaceChildren(...(lab.tcb_reference || []).map((r) =>
      h("li", {}, h("strong", { text: `${r.what}: ` }), `${r.figure} `, h("span", { class: "hint", text: `(${r.source})` }))));
  }

  showFaultMenu(lab) {
    const previous = this.faultSelect.value;
    const options = (lab.components || [])
      .filter((c) => c.kind !== "shell")
      .map((c) => h("option", { value: c.name, text: `${c.name} — ${c.description || c.kind || ""} (${domainLabel(lab.design, c.domain)})` }));
    this.faultSelect.replaceChildren(...options);
    if ([...this.faultSelect.options].some((o) => o.value === previous)) this.faultSelect.value = previous;
    else if ([...this.faultSelect.options].some((o) => o.value === "child2.ide")) this.faultSelect.value = "child2.ide";
  }

  /** Show the confirmation dialog; resolves true if the student confirmed. */
  confirm(title, body, ok) {
    this.dialogTitle.textContent = title;
    this.dialogText.replaceChildren(...body);
    this.dialogOk.textContent = ok;
    return new Promise((resolve) => {
      this.dialog.addEventListener("close", () => resolve(this.dialog.returnValue === "ok"), { once: true });
      this.dialog.returnValue = "";
      this.dialog.showModal();
      this.dialogOk.focus();
    });
  }

  /** Ask, then restart the lab in design `to` (the Design control, or a lesson's button); true if done. */
  async askSwitch(to = this.designSelect.value) {
    const from = this.description?.design;
    if (!to || to === from) {
      this.lab.say(`The lab already runs the ${DESIGN_LABELS[to] || to} design.`);
      return false;
    }
    const yes = await this.confirm(`Switch to ${DESIGN_LABELS[to]}?`, [
      h("p", { text: `The lab restarts in the ${DESIGN_LABELS[to]} design: every partition boots again, programs `
        + "running now are lost, the consoles reconnect." }),
      h("p", { text: "The children's disks are kept." }),
    ], `Restart as ${DESIGN_LABELS[to]}`);
    if (!yes) {
      this.designSelect.value = from;
      return false;
    }
    this.busy = true;
    this.updateControls();
    this.lab.say(`Restarting the lab in the ${DESIGN_LABELS[to]} design…`);
    try {
      const lab = await setDesign(this.lab.labId(), to);
      this.busy = false;
      this.lab.showLab(lab);
      this.lab.reconnect();
      this.lab.say(`Lab restarted in the ${DESIGN_LABELS[lab.design] || lab.design} design.`);
      this.updateControls();
      return true;
    } catch (err) {
      this.busy = false;
      this.designSelect.value = from;
      this.lab.say(`Design not changed: ${err.message}`, true);
      this.updateControls();
      return false;
    }
  }

  /** Ask (saying who should go down), then fail component `name`; true if it was injected. */
  async askFault(name = this.faultSelect.value) {
    const lab = this.description;
    const component = (lab?.components || []).find((c) => c.name === name);
    if (!component) {
      this.lab.say(`The ${DESIGN_LABELS[lab?.design] || "current"} design has no component ${name}.`, true);
      return false;
    }
    const down = expectedBlast(lab.design, component, this.partitions, this.root);
    const yes = await this.confirm(`Inject a fault into ${name}?`, [
      h("p", { text: `${name} (${component.description || component.kind}) runs in the `
        + `${domainLabel(lab.design, component.domain).toLowerCase()} in the ${DESIGN_LABELS[lab.design]} design. `
        + "Its code raises an exception, exactly as a bug would." }),
      h("p", { id: "fault-expected" }, h("strong", { text: "Expected to go down: " }),
        down.length === this.partitions.length ? `every partition (${down.join(", ")})` : down.join(", ")),
    ], "Inject fault");
    if (!yes) return false;
    this.busy = true;
    this.updateControls();
    const before = Object.fromEntries((lab.partitions || []).map((p) => [p.name, p.state]));
    try {
      const answer = await injectFault(this.lab.labId(), name);
      const after = answer && Array.isArray(answer.partitions) ? answer : await getLab(this.lab.labId());
      this.busy = false;
      this.setDescription({ ...lab, ...after, components: after.components || lab.components, tcb: after.tcb || lab.tcb });
      const fell = (after.partitions || []).filter((p) => p.state === "crashed" && before[p.name] !== "crashed");
      this.faultResult.replaceChildren(
        h("strong", { text: fell.length ? `Down: ${fell.map((p) => p.name).join(", ")}. ` : "Nothing went down. " }),
        ...fell.slice(0, 1).map((p) => h("span", { text: `${p.name}: ${p.reason || "crashed"}` })));
      this.lab.say(`Fault injected into ${name}.`);
      this.updateControls();
      return true;
    } catch (err) {
      this.busy = false;
      const hint = err instanceof ApiError && err.status === 409 ? " (this design has no such component)" : "";
      this.faultResult.textContent = `Not injected: ${err.message}${hint}`;
      this.updateControls();
      return false;
    }
  }
}
