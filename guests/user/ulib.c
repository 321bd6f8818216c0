// A tiny C library for user programs: strings and printf (one write per call).
#include <stdarg.h>
#include "user.h"

long strlen(const char *s) {
  long n = 0;
  while (s[n]) n++;
  return n;
}

int strcmp(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return (uint8)*a - (uint8)*b;
}

int strncmp(const char *a, const char *b, long n) {
  for (; n > 0; n--, a++, b++) {
    if (*a != *b || !*a) return (uint8)*a - (uint8)*b;
  }
  return 0;
}

void *memset(void *dst, int c, unsigned long n) {
  uint8 *d = dst;
  while (n--) *d++ = (uint8)c;
  return dst;
}

// Copies overlapping ranges correctly (the line editor shifts text within its buffer).
void *memmove(void *dst, const void *src, unsigned long n) {
  uint8 *d = dst;
  const uint8 *s = src;
  if (d > s)
    while (n--) d[n] = s[n];
  else
    while (n--) *d++ = *s++;
  return dst;
}

void *memcpy(void *dst, const void *src, unsigned long n) {
  uint8 *d = dst;
  const uint8 *s = src;
  while (n--) *d++ = *s++;
  return dst;
}

int isdigits(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return 0;
  return 1;
}

long atol(const char *s) {
  long v = 0;
  while (*s >= '0' && *s <= '9') v = v * 10 + (*s++ - '0');
  return v;
}

uint64 rdtsc(void) {
  uint32 lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64)hi << 32) | lo;
}

void puts(const char *s) { write(s, strlen(s)); }

static char out[512];
static int olen;

static void put(char c) {
  if (olen < (int)sizeof(out)) out[olen++] = c;
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
  while (i) put(tmp[--i]);
}

// %d %u %x %s %c with l and width/zero flags; output is buffered into one write().
void printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  olen = 0;
  for (; *fmt; fmt++) {
    if (*fmt != '%') {
      put(*fmt);
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
        long v = lng ? va_arg(ap, long) : va_arg(ap, int);
        putnum(v < 0 ? -v : v, 10, width, pad, v < 0);
        break;
      }
      case 'u': putnum(lng ? va_arg(ap, uint64) : va_arg(ap, uint32), 10, width, pad, 0); break;
      case 'x': putnum(lng ? va_arg(ap, uint64) : va_arg(ap, uint32), 16, width, pad, 0); break;
      case 's': {
        const char *s = va_arg(ap, const char *);
        for (; s && *s; s++) put(*s);
        break;
      }
      case 'c': put((char)va_arg(ap, int)); break;
      default: put('%'); put(*fmt); break;
    }
  }
  va_end(ap);
  write(out, olen);
}
