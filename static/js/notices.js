// The student's side of the classroom, on the home and lesson pages: messages from the instructor, a
// banner while the instructor is typing in one of the student's consoles (a take-over), and a note when
// the instructor reset the lab or a partition. One SSE stream (/api/classes/mine/events); a student in
// no class gets 204 and the browser stops asking. Texts go into the page as text, never as HTML.

const link = document.createElement("link");
link.rel = "stylesheet";
link.href = "/static/css/notices.css";
document.head.append(link);

const box = document.createElement("div");
box.className = "class-notices";
box.setAttribute("role", "region");
box.setAttribute("aria-label", "From your instructor");
box.setAttribute("aria-live", "polite");
document.body.prepend(box);

function notice(kind, text, key = null) {
  const item = document.createElement("div");
  item.className = `class-notice ${kind}`;
  if (key) item.dataset.key = key;
  const words = document.createElement("span");
  words.className = "text";
  words.textContent = text;
  item.append(words);
  if (kind !== "take-over") {
    const dismiss = document.createElement("button");
    dismiss.type = "button";
    dismiss.textContent = "Dismiss";
    dismiss.addEventListener("click", () => item.remove());
    item.append(dismiss);
  }
  box.append(item);
}

function show(n) {
  const partition = n.text || "a";
  if (n.kind === "message") {
    notice("message", `${n.to_class ? "To the class" : "From your instructor"}: ${n.text}`);
  } else if (n.kind === "take_over") {
    box.querySelectorAll(`[data-key="take-over-${CSS.escape(partition)}"]`).forEach((x) => x.remove());
    notice("take-over", `Your instructor is typing in your ${partition} console.`, `take-over-${partition}`);
  } else if (n.kind === "take_over_end") {
    box.querySelectorAll(`[data-key="take-over-${CSS.escape(partition)}"]`).forEach((x) => x.remove());
    notice("message", `Your instructor handed your ${partition} console back.`);
  } else if (n.kind === "reset") {
    notice("reset", n.text ? `Your instructor reset your ${n.text}.` : "Your instructor restarted your lab.");
  }
}

const source = new EventSource("/api/classes/mine/events");
source.addEventListener("notice", (event) => show(JSON.parse(event.data)));
