// A block device driver as the rest of the kernel sees it: a small table of
// operations on 512-byte sectors. Each driver (ide.c today, storvsc.c for the
// VMBus synthetic disk) has a probe function that returns its table when it
// finds its device, NULL otherwise; disk.c picks the first one that answers.
#pragma once
#include "types.h"

#define SECTOR_SIZE 512

struct disk_ops {
  const char *driver;  // short name shown at boot: "ide", "storvsc"
  const char *model;   // what the device says it is
  uint64 sectors;      // capacity
  // Return 0, or -E_IO (fs.h) if the device reported an error. n >= 1;
  // disk.c has already checked that lba + n <= sectors.
  int (*read)(uint64 lba, uint32 n, void *buf);
  int (*write)(uint64 lba, uint32 n, const void *buf);
  int (*flush)(void);  // make written sectors durable
};

typedef const struct disk_ops *(*disk_probe_fn)(void);

// ide.c
const struct disk_ops *ide_probe(void);
// storvsc.c
const struct disk_ops *storvsc_probe(void);
