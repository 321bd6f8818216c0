// A process: its own address space, its own kernel stack.
#pragma once
#include "types.h"

#define NPROC 8

// Registers the interrupt stub saves (entry.S alltraps), then what the CPU pushed.
struct trapframe {
  uint64 r15, r14, r13, r12, r11, r10, r9, r8;
  uint64 rbp, rdi, rsi, rdx, rcx, rbx, rax;
  uint64 vector, err;
  uint64 rip, cs, rflags, rsp, ss;
};

// Callee-saved registers pushed by swtch(); the stack pointer names it.
struct context {
  uint64 r15, r14, r13, r12, rbx, rbp, rip;
};

enum procstate { UNUSED, RUNNABLE, RUNNING, WAITING, ZOMBIE };

struct proc {
  enum procstate state;
  int pid;
  char name[16];
  uint64 *pml4;          // this process's page tables
  char *kstack;          // one page; TSS.RSP0 points at its top while it runs
  struct context *context;
  struct proc *parent;
  int exit_status;
  int killed;            // set by Ctrl-C; acted on at the next return to user mode
  uint64 start_us;
};
