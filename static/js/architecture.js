// The architecture picture: the classic figure of a hypervisor design, drawn live (SVG).
//
// Privilege layers run across the page — user mode, kernel mode, hypervisor, hardware — and the
// partitions stand side by side on them. The components the lab reports (GET /api/labs/<id>:
// `components`, each with the domain the current design runs it in) are written where they run.
// The hops that really happened light up, from the hops the hypervisor recorded (the snapshot's
// `hops`: every hop counted by the code that made it, not the 64-hop sample of `transitions`),
// with a count per edge. Below the picture the same facts are written out in words
// for screen readers and for anyone who prefers text.

const SVG = "http://www.w3.org/2000/svg";

export const DESIGN_LABELS = {
  microkernel: "Micro-kernel (Hyper-V)",
  monolithic: "Monolithic (ESX)",
  hosted: "Hosted (Virtual PC)",
};

// Geometry (SVG user units; the picture scales to its box).
const W = 760;
const LABEL_W = 104;
const TOP = 8;
// Each layer: [top, height]; the gaps between them are where the hops are drawn and counted.
const ROW = { user: [TOP, 92], kernel: [TOP + 130, 92], hypervisor: [TOP + 262, 84], hardware: [TOP + 360, 30] };
const LINE = 11; // a line of component names
const H = ROW.hardware[0] + ROW.hardware[1] + 8;
const RECENT_MS = 1500; // an edge stays lit this long after it last grew

const LAYER_NAMES = { user: "User mode", kernel: "Kernel mode", hypervisor: "Hypervisor", hardware: "Hardware" };

/** The layer and owner of a hop's endpoint: "child2/kernel" -> {owner: "child2", layer: "kernel"}. */
export function endpoint(text) {
  const s = String(text || "");
  const slash = s.lastIndexOf("/");
  if (slash < 0) return { owner: "", layer: s === "hypervisor" ? "hypervisor" : s };
  return { owner: s.slice(0, slash), layer: s.slice(slash + 1) };
}

/** Where a component's domain puts it: {owner, layer} in the picture. */
export function placeOf(domain, root) {
  if (domain === "hypervisor") return { owner: "", layer: "hypervisor" };
  if (domain === "root_kernel") return { owner: root, layer: "kernel" };
  if (domain === "root_user") return { owner: root, layer: "user" };
  return null;
}

function el(name, attrs = {}, text = undefined) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

const fmt = (n) => Math.round(n).toLocaleString("en-US");

export class ArchitecturePicture {
  /** @param {HTMLElement} container where the figure goes (emptied) */
  constructor(container) {
    this.container = container;
    this.design = null;
    this.partitions = ["root", "child1", "child2"];
    this.root = "root";
    this.components = [];
    this.baseline = null; // hop counts at the last reset: the picture shows what happened since
    this.counts = new Map(); // edge key -> {partition, from, to, reasons: Map(reason -> n), total, lastGrew}
    this.build();
  }

  build() {
    const id = `arch-${Math.random().toString(36).slice(2, 8)}`;
    this.figure = document.createElement("figure");
    this.figure.className = "arch";
    this.svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": `${id}-title ${id}-desc`,
      class: "arch-svg", "data-testid": "architecture" });
    this.svgTitle = el("title", { id: `${id}-title` }, "Architecture");
    this.svgDesc = el("desc", { id: `${id}-desc` }, "");
    this.svg.append(this.svgTitle, this.svgDesc);
    const defs = el("defs");
    for (const [name, cls] of [["arrow", "arch-arrow"], ["arrow-lit", "arch-arrow lit"]]) {
      const marker = el("marker", { id: `${id}-${name}`, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 9,
        markerHeight: 9, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" });
      marker.append(el("path", { d: "M0,0 L10,5 L0,10 z", class: cls }));
      defs.append(marker);
    }
    this.markerId = id;
    this.svg.append(defs);
    this.layers = el("g", { class: "arch-layers" });
    this.edges = el("g", { class: "arch-edges" });
    this.svg.append(this.layers, this.edges);
    this.caption = document.createElement("figcaption");
    this.caption.className = "arch-caption";
    this.words = document.createElement("details");
    this.words.className = "arch-words";
    const summary = document.createElement("summary");
    summary.textContent = "The picture in words";
    this.wordsBody = document.createElement("div");
    this.wordsBody.className = "arch-words-body";
    this.wordsBody.setAttribute("aria-live", "off");
    this.words.append(summary, this.wordsBody);
    this.figure.append(this.svg, this.caption, this.words);
    this.container.replaceChildren(this.figure);
  }

  /** The lab's design, partitions and components (from the lab description). */
  setLab({ design, partitions, components }) {
    const names = (partitions || []).map((p) => (typeof p === "string" ? p : p.name)).filter(Boolean);
    const roles = Object.fromEntries((partitions || []).filter((p) => typeof p === "object").map((p) => [p.name, p.role]));
    if (names.length) {
      this.root = names.find((n) => roles[n] === "root") || (names.includes("root") ? "root" : names[0]);
      this.partitions = [this.root, ...names.filter((n) => n !== this.root).sort()];
    }
    const changed = design !== this.design;
    this.design = design || this.design;
    if (Array.isArray(components)) this.components = components;
    if (changed) this.resetCounts();
    this.drawLayers();
    this.render();
  }

  /** Count from now on: the edges show what happens after this. */
  resetCounts() {
    this.baseline = null;
    this.counts.clear();
    this.render();
  }

  /** A telemetry snapshot: its `hops` (every hop the hypervisor counted, since the lab started),
   * shown as what happened since the counts were reset. */
  update(snapshot) {
    if (snapshot.design && snapshot.design !== this.design) return; // the lab is switching: wait for setLab
    if (!Array.isArray(snapshot.hops)) return; // a stopped lab: nothing moves
    const now = performance.now();
    // A fresh lab process (a restart) counts from zero again: so does the picture.
    if (this.baseline !== null && snapshot.hops.some((h) => h.count < (this.baseline.get(this.hopKey(h)) || 0))) {
      this.baseline = null;
      this.counts.clear();
    }
    if (this.baseline === null) {
      this.baseline = new Map(snapshot.hops.map((h) => [this.hopKey(h), h.count]));
    }
    for (const h of snapshot.hops) {
      const n = h.count - (this.baseline.get(this.hopKey(h)) || 0);
      if (n > 0) this.set(h.partition, h.from, h.to, h.reason, n, now);
    }
    this.render(now);
  }

  hopKey(h) {
    return `${h.partition}|${h.from}|${h.to}|${h.reason}`;
  }

  /** One partition's count of one reason on the edge from -> to; the edge lights up when it grew. */
  set(partition, from, to, reason, n, now) {
    const key = `${from}|${to}`;
    let edge = this.counts.get(key);
    if (!edge) {
      edge = { from, to, reasons: new Map(), partitions: new Set(), total: 0, lastGrew: 0 };
      this.counts.set(key, edge);
    }
    const rkey = `${partition}|${reason}`;
    if (n > (edge.reasons.get(rkey) || 0)) edge.lastGrew = now;
    edge.reasons.set(rkey, n);
    edge.partitions.add(partition);
    edge.total = [...edge.reasons.values()].reduce((a, b) => a + b, 0);
  }

  /** Centre x of a partition's column (or of the whole picture). */
  columnX(owner) {
    const i = this.partitions.indexOf(owner);
    const n = this.partitions.length;
    const cw = (W - LABEL_W - 8) / n;
    if (i < 0) return LABEL_W + (W - LABEL_W - 8) / 2;
    return LABEL_W + cw * i + cw / 2;
  }

  columnWidth() {
    return (W - LABEL_W - 8) / this.partitions.length;
  }

  drawLayers() {
    const g = this.layers;
    g.replaceChildren();
    const hosted = this.design === "hosted";
    // Layer bands and their names.
    for (const [layer, [y, h]] of Object.entries(ROW)) {
      g.append(el("rect", { x: 0, y, width: W, height: h, class: `arch-band arch-band-${layer}` }));
      g.append(el("text", { x: 8, y: y + 18, class: "arch-layer-name" }, LAYER_NAMES[layer]));
    }
    const cw = this.columnWidth();
    // The partitions: user and kernel cells in their column.
    for (const owner of this.partitions) {
      const x = this.columnX(owner) - cw / 2 + 6;
      const isRoot = owner === this.root;
      const title = isRoot ? (hosted ? `${owner} (the host)` : `${owner} (root partition)`) : owner;
      for (const layer of ["user", "kernel"]) {
        const [y, h] = ROW[layer];
        g.append(el("rect", { x, y: y + 4, width: cw - 12, height: h - 8, rx: 6,
          class: `arch-cell ${isRoot ? "arch-root" : "arch-child"}`, "data-node": `${owner}/${layer}` }));
      }
      g.append(el("text", { x: x + 8, y: ROW.user[0] + 20, class: "arch-partition" }, title));
      g.append(el("text", { x: x + 8, y: ROW.kernel[0] + 20, class: "arch-cell-name" },
        isRoot && hosted ? "host kernel" : `${owner} kernel`));
    }
    // The hypervisor (or its absence) and the hardware span every partition.
    const [hy, hh] = ROW.hypervisor;
    g.append(el("rect", { x: LABEL_W, y: hy + 4, width: W - LABEL_W - 8, height: hh - 8, rx: 6,
      class: hosted ? "arch-hv arch-hv-none" : "arch-hv", "data-node": "hypervisor" }));
    if (hosted) {
      g.append(el("text", { x: LABEL_W + 10, y: hy + 22, class: "arch-cell-name" },
        "none in the hosted design: the host's kernel drives the hardware; its VMM driver runs the guests"));
    }
    const [wy, wh] = ROW.hardware;
    g.append(el("rect", { x: LABEL_W, y: wy + 3, width: W - LABEL_W - 8, height: wh - 6, rx: 4, class: "arch-hw" }));
    g.append(el("text", { x: LABEL_W + 10, y: wy + 20, class: "arch-cell-name" }, "CPU, memory, disk"));
    this.drawComponents();
  }

  /** The components, written in the cell of the domain they run in, grouped by whose they are. */
  drawComponents() {
    const groups = new Map(); // "owner/layer" -> Map(partition -> [kinds])
    for (const c of this.components) {
      const place = placeOf(c.domain, this.root);
      if (!place) continue;
      const cell = place.owner ? `${place.owner}/${place.layer}` : "hypervisor";
      const [whose, kind] = c.name.includes(".") ? c.name.split(".", 2) : ["", c.name];
      if (!groups.has(cell)) groups.set(cell, new Map());
      const byOwner = groups.get(cell);
      if (!byOwner.has(whose)) byOwner.set(whose, []);
      byOwner.get(whose).push(kind);
    }
    const cw = this.columnWidth();
    for (const [cell, byOwner] of groups) {
      const { owner, layer } = endpoint(cell);
      const [y, h] = ROW[layer === "hypervisor" ? "hypervisor" : layer];
      const lines = [...byOwner].map(([whose, kinds]) => (whose ? `${whose}: ${kinds.join(" · ")}` : kinds.join(" · ")));
      const x = layer === "hypervisor" ? LABEL_W + 10 : this.columnX(owner) - cw / 2 + 14;
      const top = layer === "hypervisor" ? y + 22 : y + 38;
      const room = Math.max(1, Math.floor((h - (top - y) - 4) / LINE) + 1);
      const hv = this.components.find((c) => c.name === "hypervisor");
      const shown = layer === "hypervisor"
        ? [...(hv?.description ? [hv.description] : []), ...lines.filter((l) => l !== "hypervisor")]
        : lines;
      const text = el("text", { x, y: top, class: "arch-components" });
      const maxChars = layer === "hypervisor" ? 105 : Math.floor((cw - 24) / 6.1);
      shown.slice(0, room).forEach((line, i) => {
        const clipped = line.length > maxChars ? `${line.slice(0, maxChars - 1)}…` : line;
        text.append(el("tspan", { x, dy: i ? LINE : 0 }, clipped));
      });
      this.layers.append(text);
    }
  }

  /** Where an endpoint sits; the hypervisor's anchor is under the other end's partition. */
  anchor(point, other) {
    const { owner, layer } = endpoint(point);
    if (layer === "hypervisor" || !owner) {
      const o = endpoint(other).owner;
      return { x: this.columnX(o || this.root), y: ROW.hypervisor[0] + 4, layer: "hypervisor" };
    }
    const [y, h] = ROW[layer] || ROW.kernel;
    return { x: this.columnX(owner), y: y + h / 2, top: y + 4, bottom: y + h - 4, layer };
  }

  render(now = performance.now()) {
    if (!this.svg) return;
    const g = this.edges;
    g.replaceChildren();
    const edges = [...this.counts.values()].filter((e) => e.total > 0);
    const lanes = this.lanes(edges);
    for (const e of edges) {
      const lit = now - e.lastGrew < RECENT_MS;
      const a = this.anchor(e.from, e.to);
      const b = this.anchor(e.to, e.from);
      const title = `${e.from} → ${e.to}: ${fmt(e.total)} (${[...e.reasons].map(([k, n]) => `${k.split("|")[1]} ${fmt(n)}`).join(", ")})`;
      if (e.from === e.to) {
        // Work done at one place (a VSP, a device model): a badge, not an edge.
        const badge = el("g", { class: `arch-badge${lit ? " lit" : ""}`, "data-edge": `${e.from}|${e.to}`,
          "data-count": e.total });
        const label = `ran here ×${fmt(e.total)}`;
        const width = 10 + 6.1 * label.length;
        const owner = a.layer === "hypervisor" ? endpoint(this.firstPartition(e)).owner : endpoint(e.from).owner;
        const x = this.columnX(owner) + this.columnWidth() / 2 - 10 - width;
        const y = a.layer === "hypervisor" ? ROW.hypervisor[0] + ROW.hypervisor[1] - 12 : a.bottom - 6;
        badge.append(el("title", {}, title));
        badge.append(el("rect", { x, y: y - 12, width, height: 16, rx: 8 }));
        badge.append(el("text", { x: x + 5, y: y }, label));
        g.append(badge);
        continue;
      }
      let d;
      let lx;
      let ly;
      if (endpoint(e.from).owner && endpoint(e.from).owner === endpoint(e.to).owner || a.layer === "hypervisor" || b.layer === "hypervisor") {
        // Vertical: within a column, or between a partition and the hypervisor below it.
        const down = this.level(e.from) > this.level(e.to); // user mode is drawn at the top
        const x = a.x + lanes.get(e);
        const y1 = a.layer === "hypervisor" ? a.y : down ? a.bottom : a.top;
        const y2 = b.layer === "hypervisor" ? b.y : down ? b.top : b.bottom;
        d = `M${x},${y1} L${x},${y2}`;
        lx = x;
        ly = (y1 + y2) / 2 + 4;
        g.append(this.edge(d, lit, title, e, lx, ly, "middle"));
      } else {
        // Between two partitions (a world switch into the host): down into the gap under their
        // layer, across, and up into the other one.
        const shift = a.x < b.x ? -8 : 8;
        const [x1, x2] = [a.x + shift, b.x + shift];
        const gap = (a.layer === "user" ? ROW.kernel[0] : ROW.hypervisor[0]) - (a.x < b.x ? 18 : 8);
        d = `M${x1},${a.bottom} C${x1},${gap} ${x2},${gap} ${x2},${b.bottom}`;
        lx = (x1 + x2) / 2;
        ly = gap - (a.x < b.x ? -3 : -12);
        g.append(this.edge(d, lit, title, e, lx, ly, "middle"));
      }
    }
    this.describe(edges);
  }

  /** Vertical edges of one column side by side, 22 units apart around the column's centre: the
   * upward and downward edge between the same two layers next to each other. */
  lanes(edges) {
    const byColumn = new Map();
    for (const e of edges) {
      if (e.from === e.to) continue;
      const a = this.anchor(e.from, e.to);
      const [lo, hi] = [this.level(e.from), this.level(e.to)].sort();
      const column = a.x;
      if (!byColumn.has(column)) byColumn.set(column, []);
      byColumn.get(column).push({ e, order: hi * 10 + lo + (this.level(e.from) > this.level(e.to) ? 0 : 0.5) });
    }
    const out = new Map();
    for (const list of byColumn.values()) {
      list.sort((x, y) => x.order - y.order);
      list.forEach(({ e }, i) => out.set(e, (i - (list.length - 1) / 2) * 22));
    }
    return out;
  }

  firstPartition(e) {
    return `${[...e.partitions][0] || this.root}/kernel`;
  }

  level(point) {
    return { user: 3, kernel: 2, hypervisor: 1, hardware: 0 }[endpoint(point).layer] ?? 2;
  }

  edge(d, lit, title, e, lx, ly, anchor) {
    const group = el("g", { class: `arch-edge${lit ? " lit" : ""}`, "data-edge": `${e.from}|${e.to}`,
      "data-count": e.total });
    group.append(el("title", {}, title));
    group.append(el("path", { d, "marker-end": `url(#${this.markerId}-${lit ? "arrow-lit" : "arrow"})` }));
    group.append(el("text", { x: lx, y: ly, "text-anchor": anchor }, `×${fmt(e.total)}`));
    return group;
  }

  /** The title, description and the words below: the same facts as the picture. */
  describe(edges) {
    const label = DESIGN_LABELS[this.design] || this.design || "…";
    this.svgTitle.textContent = `Architecture of this lab: ${label}`;
    const where = { hypervisor: [], root_kernel: [], root_user: [] };
    for (const c of this.components) (where[c.domain] ||= []).push(c.name);
    const hosted = this.design === "hosted";
    const placement = [
      hosted ? "No hypervisor." : `Hypervisor: ${where.hypervisor.join(", ") || "nothing else"}.`,
      `${hosted ? "Host" : "Root partition's"} kernel: ${where.root_kernel.join(", ") || "nothing else"}.`,
      `${hosted ? "Host" : "Root partition's"} user mode: ${where.root_user.join(", ") || "nothing else"}.`,
    ];
    const sorted = [...edges].sort((x, y) => y.total - x.total);
    const hops = sorted.map((e) => `${e.from === e.to ? `${e.from} (work done there)` : `${e.from} → ${e.to}`}: ${fmt(e.total)}`);
    const how = "counted by the hypervisor";
    this.svgDesc.textContent = `${placement.join(" ")} Hops since the counts were reset (${how}): ${hops.length ? hops.join("; ") : "none yet"}.`;
    this.caption.textContent = `${label}: where each component runs, and the hops ${how} since the counts were reset (lit: in the last ${RECENT_MS / 1000} s).`;
    const list = (items) => {
      const ul = document.createElement("ul");
      for (const item of items) {
        const li = document.createElement("li");
        li.textContent = item;
        ul.append(li);
      }
      return ul;
    };
    const h1 = document.createElement("p");
    h1.textContent = `Design: ${label}. Where the components run:`;
    const h2 = document.createElement("p");
    h2.textContent = hops.length ? "Hops since the counts were reset, most frequent first:" : "No hops since the counts were reset.";
    this.wordsBody.replaceChildren(h1, list(placement), h2, ...(hops.length ? [list(hops)] : []));
  }
}
