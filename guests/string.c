// The few string routines the kernel uses.
#include "defs.h"

void *memset(void *dst, int c, uint64 n) {
  uint8 *d = dst;
  while (n--) *d++ = (uint8)c;
  return dst;
}

void *memcpy(void *dst, const void *src, uint64 n) {
  uint8 *d = dst;
  const uint8 *s = src;
  while (n--) *d++ = *s++;
  return dst;
}

int strcmp(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return (uint8)*a - (uint8)*b;
}

uint64 strlen(const char *s) {
  uint64 n = 0;
  while (s[n]) n++;
  return n;
}

// Copy at most n-1 bytes and always terminate.
char *strncpy_z(char *dst, const char *src, uint64 n) {
  uint64 i = 0;
  for (; i + 1 < n && src[i]; i++) dst[i] = src[i];
  if (n) dst[i] = 0;
  return dst;
}

// A small snprintf for tables: %d %u %lu %ld %x %lx %s %c, width, '-' (left) and '0' flags.
#include <stdarg.h>
int snprintf_u(char *buf, int n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int len = 0;
#define PUT(ch) do { if (len + 1 < n) buf[len] = (ch); len++; } while (0)
  for (; *fmt; fmt++) {
    if (*fmt != '%') { PUT(*fmt); continue; }
    fmt++;
    int left = 0, width = 0, lng = 0;
    char pad = ' ';
    if (*fmt == '-') left = 1, fmt++;
    if (*fmt == '0') pad = '0', fmt++;
    while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
    while (*fmt == 'l') lng = 1, fmt++;
    char tmp[24];
    const char *s = tmp;
    int slen = 0;
    if (*fmt == 's') {
      s = va_arg(ap, const char *);
      if (!s) s = "(null)";
      slen = (int)strlen(s);
    } else if (*fmt == 'c') {
      tmp[0] = (char)va_arg(ap, int);
      slen = 1;
    } else if (*fmt == 'd' || *fmt == 'u' || *fmt == 'x') {
      uint64 v;
      int neg = 0, base = *fmt == 'x' ? 16 : 10;
      if (*fmt == 'd') {
        int64 sv = lng ? va_arg(ap, int64) : va_arg(ap, int);
        neg = sv < 0;
        v = neg ? (uint64)-sv : (uint64)sv;
      } else {
        v = lng ? va_arg(ap, uint64) : va_arg(ap, uint32);
      }
      char rev[24];
      int i = 0;
      do { rev[i++] = "0123456789abcdef"[v % base]; v /= base; } while (v);
      if (neg) rev[i++] = '-';
      while (i) tmp[slen++] = rev[--i];
    } else {
      PUT('%');
      PUT(*fmt);
      continue;
    }
    if (!left) for (int i = slen; i < width; i++) PUT(pad);
    for (int i = 0; i < slen; i++) PUT(s[i]);
    if (left) for (int i = slen; i < width; i++) PUT(' ');
  }
#undef PUT
  if (n > 0) buf[len < n ? len : n - 1] = 0;
  va_end(ap);
  return len < n ? len : (n > 0 ? n - 1 : 0);
}
