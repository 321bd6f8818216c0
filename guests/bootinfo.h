// What the hypervisor's loader hands the kernel at boot (pointer in %rdi),
// the way a boot loader passes a memory map and command line.
#pragma once
#include "types.h"

#define BOOTINFO_MAGIC 0x49424c48  // "HLBI"

struct bootinfo {
  uint32 magic;
  uint32 version;
  uint64 mem_bytes;  // guest RAM: [0, mem_bytes)
  uint64 tsc_khz;    // TSC ticks per millisecond, measured by the loader
  char name[16];     // partition name, NUL-terminated
  uint32 flags;      // BOOTINFO_IC: Integration Services installed (use VMBus)
};

#define BOOTINFO_IC 0x1
