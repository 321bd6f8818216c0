// System calls: the kernel's services to user programs, entered through the
// call gate in entry.S. Every pointer from user mode is checked first.
#include "bootinfo.h"
#include "defs.h"
#include "fs.h"
#include "proc.h"
#include "syscall.h"
#include "vmbus.h"
#include "x86.h"

static uint64 stat_fallback;
volatile uint64 *stat_syscalls = &stat_fallback;  // hv.c points this into the stats page

static char kbuf[1024];  // bounce buffer: never hand user pointers to drivers

static int user_ok(uint64 va, uint64 len, int write) { return uvm_check(myproc()->pml4, va, len, write); }

// Copy a NUL-terminated string of at most n-1 bytes from user space.
static int fetch_str(uint64 va, char *dst, int n) {
  for (int i = 0; i < n; i++) {
    if (!user_ok(va + i, 1, 0)) return -1;
    dst[i] = *(char *)(va + i);
    if (!dst[i]) return i;
  }
  return -1;
}

static int64 sys_write(uint64 va, uint64 n) {
  if (n > 4096 || !user_ok(va, n, 0)) return -1;
  for (uint64 i = 0; i < n; i++) kputc(((char *)va)[i]);
  console_flush();
  return (int64)n;
}

static int64 sys_read(uint64 va, uint64 n) {
  if (n > sizeof(kbuf)) n = sizeof(kbuf);
  if (!user_ok(va, n, 1)) return -1;
  int got = console_read(kbuf, (int)n);
  memcpy((void *)va, kbuf, got);
  return got;
}

// Fill a user buffer from a kernel routine that formats text.
static int64 copy_out_text(uint64 va, uint64 n, int len) {
  if (len < 0) return len;
  if ((uint64)len + 1 > n) len = (int)n - 1;
  if (!user_ok(va, (uint64)len + 1, 1)) return -1;
  memcpy((void *)va, kbuf, len);
  ((char *)va)[len] = 0;
  return len;
}

static int64 sys_spawn(uint64 name_va, uint64 arg_va) {
  char name[16], arg[128];
  if (fetch_str(name_va, name, sizeof(name)) < 0 || fetch_str(arg_va, arg, sizeof(arg)) < 0) return -1;
  return proc_spawn(name, arg);
}

// crash kernel: a deliberate bug in ring 0, so the student sees a bugcheck.
static int64 sys_crash(uint64 kind) {
  if (kind == 1) {
    volatile uint64 *p = (uint64 *)0;  // page 0 is never mapped
    *p = 0xdead;
  } else if (kind == 2) {
    volatile int zero = 0;
    return 1 / zero;
  }
  return -1;
}

// io N: N reads of the UART's line status register from ring 0. Each IN is
// intercepted by the hypervisor, so this measures the port-I/O exit round trip.
static int64 sys_iobench(uint64 n) {
  uint64 t0 = vp_clock();
  for (uint64 i = 0; i < n; i++) inb(0x3f8 + 5);
  return (int64)(vp_clock() - t0);
}

// --- files on the disk (fat.c) and raw disk I/O (disk.c) ---------------------------

static char fsbuf[FS_MAX_WRITE];  // file data on its way between a program and fat.c
static struct dirent dent;

// A file name from user space. Longer than "FILENAME.EXT" is not an 8.3 name.
static int fetch_name(uint64 va, char *name, int n) {
  if (!user_ok(va, 1, 0)) return -1;
  return fetch_str(va, name, n) < 0 ? -E_BADNAME : 0;
}

static int64 sys_readdir(uint64 slot, uint64 va) {
  if (!user_ok(va, sizeof(dent), 1)) return -1;
  if (slot > 0xffff) return 0;  // past any root directory
  int r = fat_readdir((uint32)slot, &dent);
  if (r > 0) memcpy((void *)va, &dent, sizeof(dent));
  return r;
}

static int64 sys_readfile(uint64 name_va, uint64 offset, uint64 va, uint64 n) {
  char name[16];
  int r = fetch_name(name_va, name, sizeof(name));
  if (r < 0) return r;
  if (n > sizeof(fsbuf)) n = sizeof(fsbuf);
  if (!user_ok(va, n, 1)) return -1;
  if (offset > 0xffffffffUL) return 0;  // FAT file sizes are 32-bit
  r = fat_read(name, (uint32)offset, fsbuf, (uint32)n);
  if (r > 0) memcpy((void *)va, fsbuf, r);
  return r;
}

static int64 sys_writefile(uint64 name_va, uint64 va, uint64 n) {
  char name[16];
  int r = fetch_name(name_va, name, sizeof(name));
  if (r < 0) return r;
  if (n > sizeof(fsbuf)) return -E_RANGE;
  if (!user_ok(va, n, 0)) return -1;
  memcpy(fsbuf, (void *)va, n);
  return fat_write(name, fsbuf, (uint32)n);
}

static int64 sys_unlink(uint64 name_va) {
  char name[16];
  int r = fetch_name(name_va, name, sizeof(name));
  return r < 0 ? r : fat_remove(name);
}

// dd: n sectors of raw I/O on the scratch area between the MBR and the
// partition, timed in TSC ticks here in the kernel.
static int64 sys_diskbench(uint64 write, uint64 n) {
  int limit = fat_scratch_sectors();
  if (limit < 0) return limit;
  if (n < 1 || n > (uint64)limit) return -E_RANGE;
  return disk_bench(write != 0, (uint32)n);
}

uint64 syscall(uint64 num, uint64 a0, uint64 a1, uint64 a2, uint64 a3) {
  (*stat_syscalls)++;
  char name[16];
  switch (num) {
    case SYS_exit: proc_exit((int)a0);
    case SYS_write: return sys_write(a0, a1);
    case SYS_read: return sys_read(a0, a1);
    case SYS_getpid: return myproc()->pid;
    case SYS_spawn: return sys_spawn(a0, a1);
    case SYS_ps: return copy_out_text(a0, a1, proc_list(kbuf, sizeof(kbuf)));
    case SYS_uptime: return uptime_us();
    case SYS_hvinfo: return copy_out_text(a0, a1, hv_info(kbuf, sizeof(kbuf)));
    case SYS_vmlist: return copy_out_text(a0, a1, hv_vm_list(kbuf, sizeof(kbuf)));
    case SYS_vmstate:
      if (fetch_str(a0, name, sizeof(name)) < 0) return -1;
      return hv_vm_set_state(name, a1);
    case SYS_crash: return sys_crash(a0);
    case SYS_tsckhz: return bootinfo->tsc_khz;
    case SYS_iobench: return sys_iobench(a0);
    case SYS_readdir: return sys_readdir(a0, a1);
    case SYS_readfile: return sys_readfile(a0, a1, a2, a3);
    case SYS_writefile: return sys_writefile(a0, a1, a2);
    case SYS_unlink: return sys_unlink(a0);
    case SYS_diskbench: return sys_diskbench(a0, a1);
    case SYS_vmbus: return copy_out_text(a0, a1, vmbus_list(kbuf, sizeof(kbuf)));
    case SYS_walltime: return ic_unix_time();
    case SYS_vpclock: return vp_clock();
    case SYS_uname: return copy_out_text(a0, a1, snprintf_u(kbuf, sizeof(kbuf), "%s", bootinfo->name));
    default: return -1;
  }
}
