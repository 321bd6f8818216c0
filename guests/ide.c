// Driver for an ATA disk on the primary IDE channel, in PIO mode.
//
// The CPU moves every byte itself through the data port, one 16-bit word per
// `inw`/`outw`. Under a hypervisor each of those port accesses is an
// intercept: one sector costs 256 data-port exits plus the task-file writes
// and status reads. That is the point of this driver in hyperlab -- compare
// it with storvsc.c, which hands the host a whole request in one packet.
//
// We poll and never take IRQ 14: nIEN is set in the device control register,
// and system calls run with interrupts off anyway.
#include "bootinfo.h"
#include "defs.h"
#include "disk.h"
#include "fs.h"
#include "x86.h"

// Task-file registers of the primary channel (command block at 0x1F0).
#define ATA_DATA 0x1f0     // 16-bit data port
#define ATA_ERROR 0x1f1    // read: error bits of the last command
#define ATA_COUNT 0x1f2    // sector count (0 means 256)
#define ATA_LBA0 0x1f3     // LBA bits 0-7
#define ATA_LBA1 0x1f4     // LBA bits 8-15
#define ATA_LBA2 0x1f5     // LBA bits 16-23
#define ATA_DRIVE 0x1f6    // 0xE0 | LBA bits 24-27: master drive, LBA addressing
#define ATA_STATUS 0x1f7   // read: status
#define ATA_COMMAND 0x1f7  // write: command
#define ATA_ALTSTATUS 0x3f6  // read: status without acknowledging an interrupt
#define ATA_CONTROL 0x3f6    // write: device control

#define ST_ERR 0x01   // the last command failed: see ATA_ERROR
#define ST_DRQ 0x08   // the drive wants to transfer a sector's data
#define ST_DF 0x20    // drive fault
#define ST_DRDY 0x40  // drive ready for a command
#define ST_BSY 0x80   // busy: no other bit is valid

#define CTL_NIEN 0x02  // no interrupts: we poll

#define CMD_READ_SECTORS 0x20
#define CMD_WRITE_SECTORS 0x30
#define CMD_FLUSH_CACHE 0xe7
#define CMD_IDENTIFY 0xec

#define TIMEOUT_MS 2000  // a drive that stays busy this long is gone

static uint16 ident[256];  // the IDENTIFY DEVICE block
static char model[41];

// The drive needs 400 ns after a command before its status is valid; four
// reads of the alternate status register are the classic way to wait it out.
static void delay400ns(void) {
  for (int i = 0; i < 4; i++) inb(ATA_ALTSTATUS);
}

static int report(const char *what, uint64 lba, int status) {
  kprintf("ide: %s at LBA %lu failed (status %x, error %x)\n", what, lba, status, inb(ATA_ERROR));
  return -E_IO;
}

// Poll until BSY clears; returns the status, or -E_IO if it never does.
static int wait_ready(void) {
  uint64 deadline = rdtsc() + TIMEOUT_MS * bootinfo->tsc_khz;
  for (;;) {
    uint8 s = inb(ATA_STATUS);
    if (!(s & ST_BSY)) return s;
    if (rdtsc() > deadline) return -E_IO;
  }
}

// Poll until the drive offers (or asks for) a sector's data.
static int wait_drq(const char *what, uint64 lba) {
  int s = wait_ready();
  if (s < 0) return report(what, lba, 0xff);
  if ((s & (ST_ERR | ST_DF)) || !(s & ST_DRQ)) return report(what, lba, s);
  return 0;
}

// Load the task file and issue a command for n (1..256) sectors at lba.
static int issue(uint8 cmd, uint64 lba, uint32 n) {
  if (wait_ready() < 0) return report("select", lba, 0xff);
  outb(ATA_DRIVE, 0xe0 | ((lba >> 24) & 0x0f));
  outb(ATA_COUNT, (uint8)n);  // 256 is written as 0
  outb(ATA_LBA0, (uint8)lba);
  outb(ATA_LBA1, (uint8)(lba >> 8));
  outb(ATA_LBA2, (uint8)(lba >> 16));
  outb(ATA_COMMAND, cmd);
  delay400ns();
  return 0;
}

// After the last sector: the drive must end the command without an error.
static int finish(const char *what, uint64 lba) {
  int s = wait_ready();
  if (s < 0 || (s & (ST_ERR | ST_DF))) return report(what, lba, s < 0 ? 0xff : s);
  return 0;
}

// One READ SECTORS command moves at most 256 sectors.
static int read_chunk(uint64 lba, uint32 n, uint16 *buf) {
  if (issue(CMD_READ_SECTORS, lba, n) < 0) return -E_IO;
  for (uint32 s = 0; s < n; s++) {
    if (wait_drq("read", lba + s) < 0) return -E_IO;
    for (int i = 0; i < 256; i++) *buf++ = inw(ATA_DATA);  // one intercept per word
  }
  return finish("read", lba);
}

static int write_chunk(uint64 lba, uint32 n, const uint16 *buf) {
  if (issue(CMD_WRITE_SECTORS, lba, n) < 0) return -E_IO;
  for (uint32 s = 0; s < n; s++) {
    if (wait_drq("write", lba + s) < 0) return -E_IO;
    for (int i = 0; i < 256; i++) outw(ATA_DATA, *buf++);
  }
  return finish("write", lba);
}

static int ide_read(uint64 lba, uint32 n, void *buf) {
  for (uint32 done = 0; done < n;) {
    uint32 k = n - done > 256 ? 256 : n - done;
    if (read_chunk(lba + done, k, (uint16 *)buf + done * 256) < 0) return -E_IO;
    done += k;
  }
  return 0;
}

static int ide_write(uint64 lba, uint32 n, const void *buf) {
  for (uint32 done = 0; done < n;) {
    uint32 k = n - done > 256 ? 256 : n - done;
    if (write_chunk(lba + done, k, (const uint16 *)buf + done * 256) < 0) return -E_IO;
    done += k;
  }
  return 0;
}

static int ide_flush(void) {
  if (issue(CMD_FLUSH_CACHE, 0, 0) < 0) return -E_IO;
  return finish("flush", 0);
}

static struct disk_ops ide_ops = {
    .driver = "ide", .model = model, .read = ide_read, .write = ide_write, .flush = ide_flush};

// ATA strings hold two characters per word, high byte first.
static void copy_model(void) {
  for (int i = 0; i < 20; i++) {
    model[2 * i] = (char)(ident[27 + i] >> 8);
    model[2 * i + 1] = (char)ident[27 + i];
  }
  int n = 40;
  while (n > 0 && (model[n - 1] == ' ' || model[n - 1] == 0)) n--;
  model[n] = 0;
}

// Is there an ATA drive at primary master? Ask it with IDENTIFY DEVICE.
const struct disk_ops *ide_probe(void) {
  outb(ATA_CONTROL, CTL_NIEN);
  outb(ATA_DRIVE, 0xa0);  // select the master
  delay400ns();
  if (inb(ATA_STATUS) == 0xff) return NULL;  // nothing on the bus: it floats high
  outb(ATA_COUNT, 0);
  outb(ATA_LBA0, 0);
  outb(ATA_LBA1, 0);
  outb(ATA_LBA2, 0);
  outb(ATA_COMMAND, CMD_IDENTIFY);
  delay400ns();
  if (inb(ATA_STATUS) == 0) return NULL;  // no drive behind the controller
  int s = wait_ready();
  if (s < 0) return NULL;
  if (inb(ATA_LBA1) || inb(ATA_LBA2)) return NULL;  // an ATAPI (CD-ROM) signature, not a disk
  if ((s & (ST_ERR | ST_DF)) || !(s & ST_DRQ)) return NULL;
  for (int i = 0; i < 256; i++) ident[i] = inw(ATA_DATA);
  if (!(ident[49] & (1 << 9))) return NULL;  // we only speak LBA, not cylinders/heads/sectors
  ide_ops.sectors = ident[60] | ((uint64)ident[61] << 16);  // LBA28 capacity
  if (ide_ops.sectors == 0) return NULL;
  copy_model();
  return &ide_ops;
}
