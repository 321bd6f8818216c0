// System calls: the kernel's services to user programs, entered through the
// call gate in entry.S. Every pointer from user mode is checked first.
#include "bootinfo.h"
#include "defs.h"
#include "proc.h"
#include "syscall.h"
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
  uint64 t0 = rdtsc();
  for (uint64 i = 0; i < n; i++) inb(0x3f8 + 5);
  return (int64)(rdtsc() - t0);
}

uint64 syscall(uint64 num, uint64 a0, uint64 a1, uint64 a2) {
  (void)a2;
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
    case SYS_uname: return copy_out_text(a0, a1, snprintf_u(kbuf, sizeof(kbuf), "%s", bootinfo->name));
    default: return -1;
  }
}
