// A small, safe Markdown renderer for lesson text: it builds DOM nodes (never innerHTML), so a lesson
// cannot inject markup or script. Supported: paragraphs, #-headings, - / * / 1. lists, > quotes,
// ``` fenced code, `code`, **bold**, *emphasis* / _emphasis_, [links](url) (http, https, relative),
// and tables with | pipes |. Anything else shows as the text it is.

const SAFE_URL = /^(https?:\/\/|\/(?!\/)|#|\.{0,2}\/?[\w-])/i;

/** Inline Markdown of one piece of text, appended to ``parent``. */
export function renderInline(text, parent) {
  const pattern = /(`+)([\s\S]*?)\1|\*\*([\s\S]+?)\*\*|__([\s\S]+?)__|\*([^*\s][\s\S]*?)\*|\b_([^_\s][\s\S]*?)_\b|\[([^\]]+)\]\(([^)\s]+)\)/g;
  let last = 0;
  for (const m of text.matchAll(pattern)) {
    if (m.index > last) parent.append(document.createTextNode(text.slice(last, m.index)));
    last = m.index + m[0].length;
    if (m[1]) {
      const code = document.createElement("code");
      code.textContent = m[2].trim() || m[2];
      parent.append(code);
    } else if (m[3] !== undefined || m[4] !== undefined) {
      const strong = document.createElement("strong");
      renderInline(m[3] ?? m[4], strong);
      parent.append(strong);
    } else if (m[5] !== undefined || m[6] !== undefined) {
      const em = document.createElement("em");
      renderInline(m[5] ?? m[6], em);
      parent.append(em);
    } else if (m[7] !== undefined) {
      const url = m[8];
      if (SAFE_URL.test(url) && !/^\s*javascript:/i.test(url)) {
        const a = document.createElement("a");
        a.href = url;
        if (/^https?:/i.test(url)) {
          a.target = "_blank";
          a.rel = "noopener noreferrer";
        }
        renderInline(m[7], a);
        parent.append(a);
      } else {
        parent.append(document.createTextNode(m[0]));
      }
    }
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}

function splitRow(line) {
  return line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((c) => c.trim());
}

/** Render Markdown ``source`` into ``container`` (its children are replaced). */
export function renderMarkdown(source, container) {
  const nodes = [];
  const lines = String(source || "").replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  const isBlank = (l) => /^\s*$/.test(l);
  const startsBlock = (l) => /^(```|#{1,6}\s|\s*([-*+]|\d+[.)])\s|>\s?|\|)/.test(l);
  while (i < lines.length) {
    const line = lines[i];
    if (isBlank(line)) {
      i += 1;
      continue;
    }
    let m;
    if ((m = /^```\s*([\w+-]*)\s*$/.exec(line))) {
      const body = [];
      i += 1;
      while (i < lines.length && !/^```\s*$/.test(lines[i])) body.push(lines[i++]);
      i += 1;
      const pre = document.createElement("pre");
      const code = document.createElement("code");
      if (m[1]) code.dataset.lang = m[1];
      code.textContent = body.join("\n");
      pre.append(code);
      nodes.push(pre);
    } else if ((m = /^(#{1,6})\s+(.*)$/.exec(line))) {
      // Lesson headings sit below the step title (h3): start at h4.
      const h = document.createElement(`h${Math.min(6, m[1].length + 3)}`);
      renderInline(m[2], h);
      nodes.push(h);
      i += 1;
    } else if (/^\s*([-*+]|\d+[.)])\s/.test(line)) {
      const ordered = /^\s*\d/.test(line);
      const list = document.createElement(ordered ? "ol" : "ul");
      let item = null;
      while (i < lines.length && !isBlank(lines[i])) {
        const im = /^\s*([-*+]|\d+[.)])\s+(.*)$/.exec(lines[i]);
        if (im) {
          item = document.createElement("li");
          renderInline(im[2], item);
          list.append(item);
        } else if (item) {
          item.append(document.createTextNode(" "));
          renderInline(lines[i].trim(), item);
        }
        i += 1;
      }
      nodes.push(list);
    } else if (/^>\s?/.test(line)) {
      const quote = [];
      while (i < lines.length && /^>\s?/.test(lines[i])) quote.push(lines[i++].replace(/^>\s?/, ""));
      const bq = document.createElement("blockquote");
      renderMarkdown(quote.join("\n"), bq);
      nodes.push(bq);
    } else if (/^\|/.test(line) && i + 1 < lines.length && /^\|?\s*:?-{2,}/.test(lines[i + 1])) {
      const table = document.createElement("table");
      const thead = table.createTHead();
      const head = thead.insertRow();
      for (const cell of splitRow(line)) {
        const th = document.createElement("th");
        th.scope = "col";
        renderInline(cell, th);
        head.append(th);
      }
      i += 2;
      const tbody = table.createTBody();
      while (i < lines.length && /^\|/.test(lines[i])) {
        const row = tbody.insertRow();
        for (const cell of splitRow(lines[i])) renderInline(cell, row.insertCell());
        i += 1;
      }
      nodes.push(table);
    } else {
      const para = [];
      while (i < lines.length && !isBlank(lines[i]) && (para.length === 0 || !startsBlock(lines[i]))) para.push(lines[i++]);
      const p = document.createElement("p");
      renderInline(para.join("\n"), p);
      nodes.push(p);
    }
  }
  container.replaceChildren(...nodes);
}
