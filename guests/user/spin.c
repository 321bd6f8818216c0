// spin N: a compute-bound loop of N million iterations that makes no system
// call, so it runs at the emulator's full speed; prints the time it took.
#include "user.h"

// The loop itself, kept out of line so benchmarks can run the very same
// machine code on bare Unicorn and compare.
__attribute__((noinline)) uint64 spin_loop(long n, uint64 x) {
  for (long i = 0; i < n; i++) {  // xorshift: cheap work the compiler cannot fold away
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  return x;
}

int main(const char *arg) {
  if (!isdigits(arg)) {
    puts("usage: spin N   (N million iterations)\n");
    return 1;
  }
  long n = atol(arg) * 1000000;
  uint64 x = 88172645463325252UL;
  uint64 t0 = vpclock();  // only while this VP runs: a busy sibling partition does not slow the figure
  x = spin_loop(n, x);
  uint64 us = (vpclock() - t0) * 1000 / (uint64)tsckhz();
  printf("spin: %ld iterations in %lu ms (%lu M iterations/s) [%lx]\n", n, us / 1000, us ? n / us : 0, x & 0xff);
  return 0;
}
