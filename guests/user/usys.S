# System-call stubs. Each loads the call number into %rax and makes a far
# call through the call gate (selector 0x38, DPL 3): the CPU switches to
# ring 0 on the kernel stack named in the TSS. Arguments stay in %rdi,
# %rsi, %rdx, %rcx as the C calling convention left them.
#include "../syscall.h"
.code64
.text
gate:
  .long 0          # offset: ignored, the gate names the entry point
  .word 0x3b       # selector: the call gate, RPL 3

.macro SYSCALL name, num
.globl \name
\name:
  mov $\num, %eax
  lcall *gate(%rip)
  ret
.endm

SYSCALL exit, SYS_exit
SYSCALL write, SYS_write
SYSCALL read, SYS_read
SYSCALL getpid, SYS_getpid
SYSCALL spawn, SYS_spawn
SYSCALL ps, SYS_ps
SYSCALL uptime_us, SYS_uptime
SYSCALL hvinfo, SYS_hvinfo
SYSCALL vmlist, SYS_vmlist
SYSCALL vmstate, SYS_vmstate
SYSCALL crash, SYS_crash
SYSCALL tsckhz, SYS_tsckhz
SYSCALL uname, SYS_uname
SYSCALL iobench, SYS_iobench
SYSCALL readdir, SYS_readdir
SYSCALL readfile, SYS_readfile
SYSCALL writefile, SYS_writefile
SYSCALL unlink, SYS_unlink
SYSCALL diskbench, SYS_diskbench
SYSCALL vmbus, SYS_vmbus
SYSCALL walltime, SYS_walltime
SYSCALL vpclock, SYS_vpclock
