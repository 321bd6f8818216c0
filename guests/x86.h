// Thin wrappers around x86 instructions the kernel needs.
#pragma once
#include "types.h"

static inline uint8 inb(uint16 port) {
  uint8 v;
  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline void outb(uint16 port, uint8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint16 inw(uint16 port) {
  uint16 v;
  __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline void outw(uint16 port, uint16 v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void cli(void) { __asm__ volatile("cli"); }
static inline void sti(void) { __asm__ volatile("sti"); }
// sti;hlt as one sequence: an interrupt can only arrive once the CPU is halted.
static inline void sti_hlt(void) { __asm__ volatile("sti; hlt; cli" ::: "memory"); }
static inline void lcr3(uint64 pa) { __asm__ volatile("mov %0, %%cr3" : : "r"(pa) : "memory"); }
static inline uint64 rcr2(void) {
  uint64 v;
  __asm__ volatile("mov %%cr2, %0" : "=r"(v));
  return v;
}
static inline uint64 rdtsc(void) {
  uint32 lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64)hi << 32) | lo;
}
static inline void cpuid(uint32 leaf, uint32 *a, uint32 *b, uint32 *c, uint32 *d) {
  __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}
