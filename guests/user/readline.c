// The shell's line editor: history (Up/Down), cursor movement and editing
// (Left/Right, Home/End, Backspace, Delete), Tab completion of command names,
// Ctrl-U / Ctrl-W / Ctrl-K to kill text, Ctrl-L to clear the screen, Ctrl-C
// to abandon the line; bash's Ctrl-A/E/B/F/P/N move as Home/End/Left/Right/Up/Down.
//
// Keys arrive as the bytes a VT100/xterm terminal sends: printable
// characters, control characters (Ctrl-U is 0x15) and escape sequences
// (Up is ESC [ A). The line is redrawn with relative moves only: printing
// moves right, backspace moves left. So the editor needs no terminal width:
// a line longer than a row wraps, and backspace steps back over the wrap
// because we turn on the terminal's reverse-wraparound mode (DECSET 45).
#include "user.h"

#define ESC 0x1b
#define CTRL(c) ((c) & 0x1f)
#define HISTORY 16  // lines kept for Up/Down

// Keys that arrive as escape sequences, numbered above any byte.
enum { K_NONE = 0x100, K_UP, K_DOWN, K_RIGHT, K_LEFT, K_HOME, K_END, K_DELETE };

static char history[HISTORY][LINE_MAX];
static int hist_count;  // lines in history (at most HISTORY)
static int hist_next;   // the slot the next line goes into

// The line being edited: buf[0..len) shown after the prompt, the cursor before buf[pos].
static struct {
  const char *prompt;
  const char *const *words;  // what Tab completes
  char *buf;
  int len, pos, cap;         // cap: buffer size, the NUL included
  int overflow;              // characters typed that did not fit (until the line is edited)
  int wrap_on;               // reverse wraparound requested during this line
  int browsing;              // history entry shown: 0 = the line being typed, k = k-th newest
  char saved[LINE_MAX];      // the line being typed, while Up shows older ones
} ed;

// --- output, collected so each key costs one write() ----------------------------------------
static char out[256];
static int out_len;

static void flush(void) {
  if (out_len) write(out, out_len);
  out_len = 0;
}

static void emit(const char *s, int n) {
  for (int i = 0; i < n; i++) {
    if (out_len == (int)sizeof(out)) flush();
    out[out_len++] = s[i];
  }
}

static void emits(const char *s) { emit(s, strlen(s)); }

static void repeat(char c, int n) {
  while (n-- > 0) emit(&c, 1);
}

// Move the cursor n characters left, across row wraps.
static void back(int n) {
  if (n > 0 && !ed.wrap_on) {
    emits("\x1b[?45h");  // reverse wraparound: backspace at column 0 goes up a row
    ed.wrap_on = 1;
  }
  repeat('\b', n);
}

static void bell(void) { emits("\a"); }

// --- input: one key, escape sequences decoded -----------------------------------------------
static int getbyte(void) {
  char c;
  while (read(&c, 1) != 1) {}
  return (uint8)c;
}

// ESC [ A..D / H / F, ESC O A..D / H / F (application mode), ESC [ n ~ (Home 1/7, Delete 3,
// End 4/8), with modifiers ignored (ESC [ 1 ; 5 C is Ctrl-Right: plain Right here).
static int getkey(void) {
  int c = getbyte();
  if (c != ESC) return c;
  c = getbyte();
  if (c != '[' && c != 'O') return K_NONE;  // Alt+key: not ours
  int n = 0, first = 1;
  while (((c = getbyte()) >= '0' && c <= '9') || c == ';') {
    if (c == ';') first = 0;
    else if (first) n = n * 10 + (c - '0');
  }
  switch (c) {
    case 'A': return K_UP;
    case 'B': return K_DOWN;
    case 'C': return K_RIGHT;
    case 'D': return K_LEFT;
    case 'H': return K_HOME;
    case 'F': return K_END;
    case '~': return n == 1 || n == 7 ? K_HOME : n == 4 || n == 8 ? K_END : n == 3 ? K_DELETE : K_NONE;
    default: return K_NONE;
  }
}

// --- editing --------------------------------------------------------------------------------
// Print buf[pos..len), blank `gone` cells the line no longer covers, and come back to pos.
static void redraw_tail(int gone) {
  emit(ed.buf + ed.pos, ed.len - ed.pos);
  repeat(' ', gone);
  back(ed.len - ed.pos + gone);
}

static void insert(const char *s, int n) {
  for (int i = 0; i < n; i++) {
    if (ed.len == ed.cap - 1) {  // full: a paste longer than the line is reported on Enter
      if (!ed.overflow) bell();
      ed.overflow += n - i;
      break;
    }
    memmove(ed.buf + ed.pos + 1, ed.buf + ed.pos, ed.len - ed.pos);
    ed.buf[ed.pos] = s[i];
    ed.len++;
    emit(ed.buf + ed.pos, 1);
    ed.pos++;
  }
  redraw_tail(0);
}

// Delete buf[from..to) and leave the cursor at `from`.
static void erase(int from, int to) {
  if (from >= to) return;
  ed.overflow = 0;  // the student edits what was kept: it may run
  back(ed.pos - from);
  ed.pos = from;
  memmove(ed.buf + from, ed.buf + to, ed.len - to);
  ed.len -= to - from;
  redraw_tail(to - from);
}

static void move_to(int pos) {
  if (pos < ed.pos) back(ed.pos - pos);
  else emit(ed.buf + ed.pos, pos - ed.pos);  // moving right is printing what is there
  ed.pos = pos;
}

// Show another text instead of the line (history), the cursor at its end.
static void replace(const char *s) {
  int old = ed.len, n = strlen(s);
  if (n > ed.cap - 1) n = ed.cap - 1;
  move_to(0);
  ed.overflow = 0;
  memcpy(ed.buf, s, n);
  ed.len = ed.pos = n;
  emit(ed.buf, n);
  if (old > n) {
    repeat(' ', old - n);
    back(old - n);
  }
}

// The start of the word before the cursor (Ctrl-W): skip spaces, then the word.
static int word_start(void) {
  int i = ed.pos;
  while (i > 0 && ed.buf[i - 1] == ' ') i--;
  while (i > 0 && ed.buf[i - 1] != ' ') i--;
  return i;
}

// Redraw the prompt and the line on a fresh row, the cursor where it was.
static void redraw_all(void) {
  emits(ed.prompt);
  emit(ed.buf, ed.len);
  back(ed.len - ed.pos);
}

// --- history --------------------------------------------------------------------------------
static const char *history_entry(int k) {  // k = 1: the newest line
  return history[(hist_next - k + HISTORY) % HISTORY];
}

static void history_add(const char *line) {
  if (!*line || (hist_count && strcmp(history_entry(1), line) == 0)) return;  // no repeats
  memcpy(history[hist_next], line, strlen(line) + 1);
  hist_next = (hist_next + 1) % HISTORY;
  if (hist_count < HISTORY) hist_count++;
}

static void browse(int k) {
  if (k < 0 || k > hist_count) {
    bell();
    return;
  }
  ed.buf[ed.len] = 0;
  if (ed.browsing == 0) memcpy(ed.saved, ed.buf, ed.len + 1);  // keep what was being typed
  ed.browsing = k;
  replace(k ? history_entry(k) : ed.saved);
}

// --- Tab: complete the command name before the cursor ---------------------------------------
static void complete(void) {
  int typed = ed.pos;
  for (int i = 0; i < typed; i++)
    if (ed.buf[i] == ' ') {  // only the first word is a command name
      bell();
      return;
    }
  const char *first = 0;
  int matches = 0, common = 0;  // common: length of the prefix all matches share
  for (const char *const *w = ed.words; *w; w++) {
    if (strncmp(*w, ed.buf, typed) != 0) continue;
    if (!matches++) {
      first = *w;
      common = strlen(*w);
    }
    for (int i = typed; i < common; i++)
      if ((*w)[i] != first[i]) common = i;
  }
  if (matches == 0) {
    bell();
    return;
  }
  if (common > typed) insert(first + typed, common - typed);
  if (matches == 1) {  // unique: the whole name, and a space for the argument
    if (ed.pos == ed.len || ed.buf[ed.pos] != ' ') insert(" ", 1);
    return;
  }
  if (common > typed) return;  // extended as far as they agree: the next Tab lists them
  emits("\n");
  for (const char *const *w = ed.words; *w; w++)
    if (strncmp(*w, ed.buf, typed) == 0) {
      emits(*w);
      emits("  ");
    }
  emits("\n");
  redraw_all();
}

// --- the loop -------------------------------------------------------------------------------
int readline(const char *prompt, char *buf, int cap, const char *const *words) {
  ed.prompt = prompt;
  ed.words = words;
  ed.buf = buf;
  ed.cap = cap;
  ed.len = ed.pos = ed.overflow = ed.wrap_on = ed.browsing = 0;
  emits(prompt);
  for (;;) {
    flush();
    int c = getkey();
    if (c == '\r' || c == '\n') break;
    switch (c) {
      case '\b': case 0x7f: erase(ed.pos > 0 ? ed.pos - 1 : 0, ed.pos); break;
      case K_DELETE: erase(ed.pos, ed.pos < ed.len ? ed.pos + 1 : ed.pos); break;
      case K_LEFT: case CTRL('B'): if (ed.pos > 0) move_to(ed.pos - 1); break;
      case K_RIGHT: case CTRL('F'): if (ed.pos < ed.len) move_to(ed.pos + 1); break;
      case K_HOME: case CTRL('A'): move_to(0); break;
      case K_END: case CTRL('E'): move_to(ed.len); break;
      case K_UP: case CTRL('P'): browse(ed.browsing + 1); break;
      case K_DOWN: case CTRL('N'): browse(ed.browsing - 1); break;
      case CTRL('U'): erase(0, ed.pos); break;  // kill back to the start of the line
      case CTRL('K'): erase(ed.pos, ed.len); break;  // kill to the end of the line
      case CTRL('W'): erase(word_start(), ed.pos); break;  // kill the word before the cursor
      case '\t': complete(); break;
      case CTRL('L'): emits("\x1b[H\x1b[2J"); redraw_all(); break;
      case CTRL('C'):  // abandon the line, as bash does
        move_to(ed.len);
        emits("^C\n");
        ed.len = ed.pos = ed.overflow = 0;
        ed.buf[0] = 0;
        flush();
        return 0;
      default:
        if (c >= ' ' && c < 0x7f) {
          char ch = (char)c;
          insert(&ch, 1);
        }
    }
  }
  move_to(ed.len);
  emits("\n");
  flush();
  buf[ed.len] = 0;
  if (ed.overflow) return -1;
  history_add(buf);
  return ed.len;
}
