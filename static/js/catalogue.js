// The counter catalogue: what each counter means and its unit. The page carries it as JSON data
// (#counter-catalogue), made by the server from docs/telemetry.md, the one list of counters the lesson
// checks, the CLI and the benchmarks also read. Names are patterns: <p> is a partition, <kind> a name part.

let entries = null;

function load() {
  if (entries) return entries;
  entries = [];
  const el = document.getElementById("counter-catalogue");
  if (!el) return entries;
  try {
    for (const entry of JSON.parse(el.textContent)) {
      const source = entry.name
        .split(/(<[^>]+>)/)
        .filter(Boolean)
        .map((part) => (part.startsWith("<") ? "[a-z0-9_]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
        .join("");
      entries.push({ ...entry, re: new RegExp(`^${source}$`) });
    }
  } catch {
    entries = [];
  }
  return entries;
}

/** {name, meaning, unit} of a concrete counter (``child1.vp.run_us``), or null if undocumented. */
export function describeCounter(name) {
  return load().find((e) => e.re.test(name)) || null;
}
