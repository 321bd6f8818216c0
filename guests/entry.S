# Kernel entry, trap vectors and the system-call door.
#
# The hypervisor loads this image at 0x100000 and starts the VP in 64-bit
# mode at ring 0 with %rdi pointing at struct bootinfo. Exceptions and
# interrupts arrive the way the CPU delivers them: an interrupt frame
# (SS, RSP, RFLAGS, CS, RIP and, for some vectors, an error code) on the
# stack named by TSS.RSP0 when coming from ring 3.
#include "mmu.h"

.code64
.section .text.entry
.globl _start
_start:
  cli
  lea boot_stack_top(%rip), %rsp
  xor %rbp, %rbp
  call kmain
1: hlt
  jmp 1b

.text
# One stub per vector: push a zero where the CPU pushes no error code,
# then the vector number, so every trap frame has the same shape.
.macro VEC n
  .globl vector\n
vector\n:
  .if (\n == 8 || (\n >= 10 && \n <= 14) || \n == 17)
  .else
    pushq $0
  .endif
  pushq $\n
  jmp alltraps
.endm

.altmacro
.set i, 0
.rept 64
  VEC %i
  .set i, i+1
.endr

# Table of stub addresses for idt_init().
.macro VECADDR n
  .quad vector\n
.endm
.section .rodata
.globl vectors
vectors:
.set i, 0
.rept 64
  VECADDR %i
  .set i, i+1
.endr
.text

alltraps:
  push %rax
  push %rbx
  push %rcx
  push %rdx
  push %rsi
  push %rdi
  push %rbp
  push %r8
  push %r9
  push %r10
  push %r11
  push %r12
  push %r13
  push %r14
  push %r15
  mov %rsp, %rdi
  call trap
.globl trapret
trapret:
  pop %r15
  pop %r14
  pop %r13
  pop %r12
  pop %r11
  pop %r10
  pop %r9
  pop %r8
  pop %rbp
  pop %rdi
  pop %rsi
  pop %rdx
  pop %rcx
  pop %rbx
  pop %rax
  add $16, %rsp    # vector and error code
  iretq

# The system-call door. User code does `lcall *gate` through the DPL-3
# call gate at SEG_SYSGATE; the CPU itself switches to ring 0, loads
# TSS.RSP0 and pushes the caller's SS, RSP, CS, RIP. No hypervisor is
# involved: a system call stays inside the partition.
# ABI: %rax = number, %rdi, %rsi, %rdx, %rcx = arguments; result in %rax.
# (The C calling convention's first four argument registers: lcall, unlike
# the syscall instruction, leaves %rcx alone.)
.globl sysgate
sysgate:
  cli
  mov %rcx, %r8
  mov %rdx, %rcx
  mov %rsi, %rdx
  mov %rdi, %rsi
  mov %rax, %rdi
  call syscall
  sti             # user mode always runs with interrupts on
  lretq

# void swtch(struct context **old, struct context *new);
# Save the callee-saved registers on the current kernel stack, store the
# stack pointer in *old, switch to new's stack and pop its registers.
.globl swtch
swtch:
  push %rbp
  push %rbx
  push %r12
  push %r13
  push %r14
  push %r15
  mov %rsp, (%rdi)
  mov %rsi, %rsp
  pop %r15
  pop %r14
  pop %r13
  pop %r12
  pop %rbx
  pop %rbp
  ret

.section .bss
.align 16
boot_stack:
  .space 16384
boot_stack_top:
