// crash user KIND: do something user mode may not do. The CPU (or the
// hypervisor, for port I/O) raises a fault and the kernel kills only us.
#include "user.h"

int main(const char *kind) {
  printf("crash: pid %ld about to ", getpid());
  if (strcmp(kind, "priv") == 0) {
    puts("execute a privileged instruction (cli) in ring 3\n");
    __asm__ volatile("cli");
  } else if (strcmp(kind, "io") == 0) {
    puts("write to an I/O port (COM1) from ring 3\n");
    __asm__ volatile("outb %%al, %%dx" : : "a"(0x41), "d"(0x3f8));
  } else if (strcmp(kind, "div") == 0) {
    puts("divide by zero\n");
    long q;
    __asm__ volatile("xor %%edx, %%edx; div %1" : "=a"(q) : "r"(0L), "a"(42L) : "rdx");
    printf("%ld\n", q);
  } else {
    puts("read through a NULL pointer\n");
    volatile long *p = (long *)0;
    printf("%ld\n", *p);
  }
  puts("crash: still alive?\n");
  return 0;
}
