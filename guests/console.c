// The console: formatted output to COM1 and a line of typed input.
// On an enlightened partition both go through the VMBus synthetic
// console (vconsole.c) once its channel is open.
#include <stdarg.h>
#include "defs.h"
#include "vmbus.h"
#include "x86.h"

#define INBUF 256
static char inbuf[INBUF];
static volatile uint32 in_r, in_w;  // in_w advanced by the UART interrupt

void kputc(char c) {
  if (vconsole_active()) {  // collected into packets: see console_flush
    if (c == '\n') vconsole_putc('\r');
    vconsole_putc(c);
    return;
  }
  if (c == '\n') uart_putc('\r');
  uart_putc(c);
}

// Send what kputc collected for the synthetic console (the UART needs nothing).
void console_flush(void) {
  if (vconsole_active()) vconsole_flush();
}

static void putstr(const char *s) {
  while (*s) kputc(*s++);
}

void kputs(const char *s) {
  putstr(s);
  console_flush();
}

static void putnum(uint64 v, int base, int width, char pad, int neg) {
  char tmp[24];
  int i = 0;
  do {
    tmp[i++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v);
  if (neg) tmp[i++] = '-';
  while (i < width) tmp[i++] = pad;
  while (i) kputc(tmp[--i]);
}

// %d %u %x %lu %ld %lx %s %c %p, with an optional zero/width ("%08x").
void kprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  for (; *fmt; fmt++) {
    if (*fmt != '%') {
      kputc(*fmt);
      continue;
    }
    fmt++;
    char pad = ' ';
    int width = 0, lng = 0;
    if (*fmt == '0') pad = '0', fmt++;
    while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
    while (*fmt == 'l') lng = 1, fmt++;
    switch (*fmt) {
      case 'd': {
        int64 v = lng ? va_arg(ap, int64) : va_arg(ap, int);
        putnum(v < 0 ? -v : v, 10, width, pad, v < 0);
        break;
      }
      case 'u': putnum(lng ? va_arg(ap, uint64) : va_arg(ap, uint32), 10, width, pad, 0); break;
      case 'x': putnum(lng ? va_arg(ap, uint64) : va_arg(ap, uint32), 16, width, pad, 0); break;
      case 'p': putstr("0x"); putnum(va_arg(ap, uint64), 16, 16, '0', 0); break;
      case 's': { const char *s = va_arg(ap, const char *); putstr(s ? s : "(null)"); break; }
      case 'c': kputc((char)va_arg(ap, int)); break;
      case '%': kputc('%'); break;
      default: kputc('%'); kputc(*fmt); break;
    }
  }
  va_end(ap);
  console_flush();
}

// Whether the drivers must leave typed bytes waiting in the device (the UART's
// FIFO, the VMBus ring). While the shell runs, a full buffer waits there: a
// long paste is delayed, never lost. While a program runs in the foreground,
// nothing reads typed bytes, so the kernel keeps taking them and drops what
// does not fit, as a Unix tty drops typeahead it has no room for: a Ctrl-C
// typed behind them still arrives and stops the program.
int console_full(void) { return in_w - in_r >= INBUF && !proc_foreground_program(); }

// Called from the console drivers with each received byte.
void console_input(char c) {
  if (c == 0x03 && proc_foreground_program()) {  // Ctrl-C: stop the program in the foreground
    in_r = in_w;  // and flush its typeahead, as a tty's INTR does
    proc_interrupt_foreground();
    return;
  }  // at the shell's prompt Ctrl-C is a key: the line editor abandons the line
  if (in_w - in_r >= INBUF) return;  // no room: dropped (see console_full)
  inbuf[in_w++ % INBUF] = c;
}

// Block until at least one byte was typed; the CPU sleeps in HLT meanwhile,
// so an idle partition costs its host nothing.
int console_read(char *buf, int n) {
  console_flush();  // the prompt, before we wait
  while (in_r == in_w) {
    vconsole_pull();  // typed bytes that waited in the VMBus ring
    ic_idle();        // idle: a safe point for a shutdown the host asked for
    if (in_r == in_w) sti_hlt();
  }
  int i = 0;
  while (i < n && in_r != in_w) buf[i++] = inbuf[in_r++ % INBUF];
  uart_intr();  // bytes left waiting in the UART while the buffer was full
  vconsole_pull();  // ... or in the VMBus ring
  return i;
}
