// Notebook cells: Python run in this browser by Pyodide, served from our own origin (never a CDN) and
// loaded only when a cell first runs. The hyperlab client (and the VMBus ring module) are written into
// Pyodide's file system, so `from hyperlab.web.client import Lab` works in a cell exactly as in a
// script. A cell's output, its traceback if it raises, and SVG charts (from `plot(...)`, as the cell's
// last value or printed) show under the cell.

const PYODIDE = "/static/vendor/pyodide/";
/** Modules served by the site under /py/ and importable in cells. */
const MODULES = ["hyperlab/web/client.py", "hyperlab/core/vmbus/ring.py"];
const SITE = "/home/pyodide/site";
// Said as it is: the browser's HTTP cache keeps the 13 MB (the server answers 304 when unchanged), but
// Python starts again in every page load (a few seconds; docs/performance.md has the figures).
const LOADING_TEXT = "Starting Python… (13 MB: downloaded once, then from the browser's cache; starting takes a few seconds on each page load)";
/** Outputs kept in localStorage for a reload: up to this many characters per cell. */
const OUTPUT_LIMIT = 200_000;

// Runs one cell: the last expression's value is shown (as a chart if it has _repr_svg_), stdout and
// stderr are collected in order, and a traceback (without this runner's frame) goes to stderr.
const RUNNER = `
import ast, io, json, linecache, sys, traceback
sys.path.insert(0, ${JSON.stringify(SITE)})
_hyperlab_ns = {"__name__": "__main__"}

class _HyperlabSink(io.TextIOBase):
    def __init__(self, kind, chunks):
        self.kind, self.chunks = kind, chunks
    def writable(self):
        return True
    def write(self, text):
        if self.chunks and self.chunks[-1][0] == self.kind:
            self.chunks[-1][1] += text
        else:
            self.chunks.append([self.kind, text])
        return len(text)

def _hyperlab_run(src, name):
    chunks, result, ok = [], None, True
    linecache.cache[name] = (len(src), None, src.splitlines(True), name)
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _HyperlabSink("out", chunks), _HyperlabSink("err", chunks)
    try:
        try:
            tree = ast.parse(src, name, "exec")
        except SyntaxError as exc:
            ok = False
            traceback.print_exception(type(exc), exc, None)
        else:
            last = None
            if tree.body and isinstance(tree.body[-1], ast.Expr):
                last = ast.Expression(tree.body.pop().value)
            try:
                exec(compile(tree, name, "exec"), _hyperlab_ns)
                if last is not None:
                    value = eval(compile(last, name, "eval"), _hyperlab_ns)
                    if value is not None:
                        svg = getattr(value, "_repr_svg_", None)
                        result = ["svg", svg()] if callable(svg) else ["repr", repr(value)]
            except BaseException as exc:
                ok = False
                traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next)
    finally:
        sys.stdout.flush()
        sys.stdout, sys.stderr = saved
    return json.dumps({"ok": ok, "chunks": chunks, "result": result})
`;

let runtime = null;
let queue = Promise.resolve();
let cellRuns = 0;

/** Pyodide with our modules, loaded once (a failed load may be retried). */
export function loadPython() {
  if (!runtime) {
    runtime = (async () => {
      const { loadPyodide } = await import(`${PYODIDE}pyodide.mjs`);
      const py = await loadPyodide({ indexURL: PYODIDE });
      for (const path of MODULES) {
        const response = await fetch(`/py/${path}`, { credentials: "same-origin" });
        if (!response.ok) throw new Error(`cannot fetch /py/${path} (HTTP ${response.status})`);
        const source = await response.text();
        const parts = path.split("/");
        let dir = SITE;
        py.FS.mkdirTree(dir);
        for (const part of parts.slice(0, -1)) {
          dir = `${dir}/${part}`;
          py.FS.mkdirTree(dir);
          const init = `${dir}/__init__.py`;
          if (!py.FS.analyzePath(init).exists) py.FS.writeFile(init, "");
        }
        py.FS.writeFile(`${SITE}/${path}`, source);
      }
      py.runPython(RUNNER);
      window.__hyperlab = Object.assign(window.__hyperlab || {}, { pyodide: py });
      return py;
    })();
    runtime.catch(() => {
      runtime = null;
    });
  }
  return runtime;
}

/** Splits printed text into text and whole SVG documents (a printed plot renders as a chart). */
export function splitSvg(text) {
  const parts = [];
  const pattern = /<svg[\s>][\s\S]*?<\/svg>/g;
  let last = 0;
  for (const m of text.matchAll(pattern)) {
    if (m.index > last) parts.push(["text", text.slice(last, m.index)]);
    parts.push(["svg", m[0]]);
    last = m.index + m[0].length;
  }
  if (last < text.length) parts.push(["text", text.slice(last)]);
  return parts;
}

/** An SVG chart as an <img> (an image cannot run script, whatever the SVG holds). */
function svgImage(svg) {
  const img = document.createElement("img");
  img.className = "cell-svg";
  img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
  const title = /<title>([\s\S]*?)<\/title>/.exec(svg);
  const desc = /<desc>([\s\S]*?)<\/desc>/.exec(svg);
  const unescape = (s) => {
    const t = document.createElement("textarea");
    t.innerHTML = s; // a textarea only decodes entities; nothing is rendered or run
    return t.value;
  };
  img.alt = unescape([title?.[1], desc?.[1]].filter(Boolean).join(". ")) || "chart";
  return img;
}

const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));

export class Cell {
  /**
   * @param {string} source the lesson's code for this cell
   * @param {{label: string, storageKey?: string, onRan?: () => void}} options
   */
  constructor(source, { label, storageKey, onRan } = {}) {
    this.source = source;
    this.storageKey = storageKey;
    this.onRan = onRan;
    this.el = document.createElement("section");
    this.el.className = "cell";
    this.el.setAttribute("aria-label", label);

    const bar = document.createElement("div");
    bar.className = "cell-bar";
    const title = document.createElement("span");
    title.className = "cell-label";
    title.textContent = label;
    this.runButton = document.createElement("button");
    this.runButton.type = "button";
    this.runButton.className = "primary cell-run";
    this.runButton.textContent = "Run";
    this.runButton.setAttribute("aria-keyshortcuts", "Control+Enter");
    this.runButton.title = "Run the cell (Ctrl+Enter in the editor)";
    this.runButton.addEventListener("click", () => this.run());
    this.resetButton = document.createElement("button");
    this.resetButton.type = "button";
    this.resetButton.className = "quiet";
    this.resetButton.textContent = "Restore code";
    this.resetButton.addEventListener("click", () => {
      this.code.value = this.source;
      this.save();
      this.code.focus();
    });
    bar.append(title, this.runButton, this.resetButton);

    this.code = document.createElement("textarea");
    this.code.className = "cell-code";
    this.code.spellcheck = false;
    this.code.autocapitalize = "off";
    this.code.setAttribute("autocomplete", "off");
    this.code.setAttribute("aria-label", `Python code of ${label}`);
    const help = document.createElement("p");
    help.className = "hint cell-help";
    help.id = `${(storageKey || label).replace(/[^\w-]/g, "_")}-help`;
    help.textContent = "Ctrl+Enter runs · Tab indents · Esc then Tab leaves the editor";
    this.code.setAttribute("aria-describedby", help.id);
    let saved = null;
    try {
      saved = storageKey ? localStorage.getItem(storageKey) : null;
    } catch {
      saved = null;
    }
    this.code.value = saved ?? source;
    this.code.rows = Math.min(14, Math.max(3, this.code.value.split("\n").length));
    this.escaped = false;
    this.code.addEventListener("keydown", (event) => this.onKey(event));
    this.code.addEventListener("input", () => this.save());

    this.status = document.createElement("div");
    this.status.className = "cell-status";
    this.status.setAttribute("role", "status");
    this.status.setAttribute("aria-live", "polite");
    this.output = document.createElement("div");
    this.output.className = "cell-output";
    this.output.setAttribute("aria-label", `Output of ${label}`);
    this.output.hidden = true;
    this.el.append(bar, this.code, help, this.status, this.output);
    this.outputKey = storageKey ? `${storageKey}.output` : null;
    this.restoreOutput();
  }

  /** The last run's output, kept in this browser: a reload shows it again (marked as from before). */
  restoreOutput() {
    let saved = null;
    try {
      saved = this.outputKey ? JSON.parse(localStorage.getItem(this.outputKey) || "null") : null;
    } catch {
      saved = null;
    }
    if (!saved || !Array.isArray(saved.chunks)) return;
    this.show(saved);
    this.el.classList.toggle("failed", !saved.ok);
    this.el.dataset.state = "restored";
    const when = new Date(saved.at).toLocaleTimeString();
    this.setStatus(`Output of the run at ${when}, kept in this browser. Run the cell to measure again.`);
  }

  saveOutput(answer) {
    if (!this.outputKey) return;
    try {
      const text = JSON.stringify({ chunks: answer.chunks, result: answer.result, ok: answer.ok, at: Date.now() });
      if (text.length <= OUTPUT_LIMIT) localStorage.setItem(this.outputKey, text);
      else localStorage.removeItem(this.outputKey);
    } catch {
      // storage full or disabled: the output just is not kept across reloads
    }
  }

  save() {
    if (!this.storageKey) return;
    try {
      if (this.code.value === this.source) localStorage.removeItem(this.storageKey);
      else localStorage.setItem(this.storageKey, this.code.value);
    } catch {
      // storage full or disabled: the code just is not kept across reloads
    }
  }

  onKey(event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey || event.shiftKey)) {
      event.preventDefault();
      this.run();
      return;
    }
    if (event.key === "Escape") {
      this.escaped = true;
      return;
    }
    if (event.key === "Tab" && !this.escaped && !event.ctrlKey && !event.altKey) {
      event.preventDefault();
      const { selectionStart: start, selectionEnd: end, value } = this.code;
      if (event.shiftKey) {
        const lineStart = value.lastIndexOf("\n", start - 1) + 1;
        const strip = value.slice(lineStart, lineStart + 4).match(/^ {1,4}/)?.[0].length || 0;
        this.code.setRangeText("", lineStart, lineStart + strip, "preserve");
        this.code.selectionStart = this.code.selectionEnd = Math.max(lineStart, start - strip);
      } else {
        this.code.setRangeText("    ", start, end, "end");
      }
      this.save();
      return;
    }
    this.escaped = false;
  }

  setStatus(text, loading = false) {
    this.status.replaceChildren();
    if (loading) {
      const bar = document.createElement("progress");
      bar.setAttribute("aria-label", LOADING_TEXT);
      this.status.append(bar, " ");
    }
    this.status.append(text);
  }

  /** Run the cell (cells run one at a time, in the order they were asked). */
  run() {
    const job = queue.then(() => this.execute());
    queue = job.catch(() => {});
    return job;
  }

  async execute() {
    this.runButton.disabled = true;
    this.el.classList.add("running");
    this.el.setAttribute("aria-busy", "true");
    let py;
    try {
      if (!runtime) {
        const started = performance.now();
        this.setStatus(LOADING_TEXT, true);
        const tick = setInterval(() => {
          const s = ((performance.now() - started) / 1000).toFixed(0);
          this.setStatus(`${LOADING_TEXT} ${s} s`, true);
        }, 1000);
        try {
          py = await loadPython();
        } finally {
          clearInterval(tick);
        }
      } else {
        this.setStatus(LOADING_TEXT, true);
        py = await loadPython();
      }
      this.setStatus("Running…");
      await nextFrame(); // let "Running…" paint: the cell then holds the page until it ends
      cellRuns += 1;
      const started = performance.now();
      const answer = JSON.parse(py.globals.get("_hyperlab_run")(this.code.value, `<cell ${cellRuns}>`));
      const ms = performance.now() - started;
      this.show(answer);
      this.saveOutput(answer);
      this.setStatus(answer.ok ? `Ran in ${(ms / 1000).toFixed(2)} s.` : "The cell raised an exception (traceback below).");
      this.el.classList.toggle("failed", !answer.ok);
      this.el.dataset.state = answer.ok ? "ok" : "error";
    } catch (err) {
      this.setStatus(`Python could not start: ${err.message || err}`);
      this.el.dataset.state = "unavailable";
    } finally {
      this.runButton.disabled = false;
      this.el.classList.remove("running");
      this.el.setAttribute("aria-busy", "false");
      if (this.onRan) this.onRan();
    }
  }

  show({ chunks, result }) {
    const nodes = [];
    for (const [kind, text] of chunks) {
      for (const [type, part] of kind === "out" ? splitSvg(text) : [["text", text]]) {
        if (type === "svg") {
          nodes.push(svgImage(part));
        } else if (part) {
          const pre = document.createElement("pre");
          pre.className = kind === "err" ? "cell-stderr" : "cell-stdout";
          pre.textContent = part.replace(/\n$/, "");
          nodes.push(pre);
        }
      }
    }
    if (result) {
      if (result[0] === "svg") {
        nodes.push(svgImage(result[1]));
      } else {
        const pre = document.createElement("pre");
        pre.className = "cell-result";
        pre.textContent = result[1];
        nodes.push(pre);
      }
    }
    this.output.replaceChildren(...nodes);
    this.output.hidden = nodes.length === 0;
  }
}
