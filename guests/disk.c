// The block device layer: the file system (fat.c) and the dd benchmark read
// and write 512-byte sectors here, without knowing which driver serves them.
// At boot each driver's probe is tried in order and the first device found
// becomes the disk -- the way an enlightened Windows or Linux guest prefers
// its synthetic VMBus disk (storvsc) over the emulated IDE controller.
#include "defs.h"
#include "disk.h"
#include "fs.h"
#include "x86.h"

// In order of preference: the synthetic disk if its VMBus channel opened.
static const disk_probe_fn probes[] = {
    storvsc_probe,
    ide_probe,
};

static const struct disk_ops *disk;

void disk_init(void) {
  for (uint64 i = 0; i < sizeof(probes) / sizeof(probes[0]) && !disk; i++) disk = probes[i]();
  if (disk)
    kprintf("disk: %s \"%s\", %lu sectors (%lu MiB)\n", disk->driver, disk->model, disk->sectors,
            disk->sectors / 2048);
  else
    kprintf("disk: none\n");
}

uint64 disk_sectors(void) { return disk ? disk->sectors : 0; }

// Every request is checked here once, so drivers and the file system can
// trust that it lies on the disk.
static int check(uint64 lba, uint32 n) {
  if (!disk) return -E_NODISK;
  if (n == 0 || lba >= disk->sectors || n > disk->sectors - lba) return -E_RANGE;
  return 0;
}

int disk_read(uint64 lba, uint32 n, void *buf) {
  int r = check(lba, n);
  return r < 0 ? r : disk->read(lba, n, buf);
}

int disk_write(uint64 lba, uint32 n, const void *buf) {
  int r = check(lba, n);
  return r < 0 ? r : disk->write(lba, n, buf);
}

int disk_flush(void) { return disk ? disk->flush() : -E_NODISK; }

// dd: move n sectors between memory and the scratch area (LBA 1..n) in
// requests of DD_CHUNK sectors; returns the TSC ticks it took, or an error.
// Big requests let a driver keep several commands in flight: storvsc sends
// 512 KiB as 8 packets of 64 KiB at once, one signal for all of them.
#define DD_CHUNK 1024
static uint8 ddbuf[DD_CHUNK * SECTOR_SIZE];

int64 disk_bench(int write, uint32 n) {
  if (!disk) return -E_NODISK;
  if (write)
    for (uint64 i = 0; i < sizeof(ddbuf); i++) ddbuf[i] = (uint8)(i * 7 + 1);  // any pattern will do
  uint64 t0 = vp_clock();  // waits for the disk count; other partitions' time slices do not
  for (uint32 done = 0; done < n;) {
    uint32 k = n - done > DD_CHUNK ? DD_CHUNK : n - done;
    int r = write ? disk_write(1 + done, k, ddbuf) : disk_read(1 + done, k, ddbuf);
    if (r < 0) return r;
    done += k;
  }
  if (write) {
    int r = disk_flush();
    if (r < 0) return r;
  }
  return (int64)(vp_clock() - t0);
}
