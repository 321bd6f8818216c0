// ps: the kernel's process table, seen from a process of its own.
#include "user.h"

int main(const char *arg) {
  (void)arg;
  static char buf[1024];
  if (ps(buf, sizeof(buf)) < 0) return 1;
  puts(buf);
  return 0;
}
