# The user programs, built as flat images and carried inside the kernel
# (there is no disk yet): proc.c copies one into a new address space.
.section .rodata
.macro PROGRAM name
  .globl _binary_\name\()_start, _binary_\name\()_end
  .balign 16
_binary_\name\()_start:
  .incbin "build/\name\().bin"
_binary_\name\()_end:
.endm
PROGRAM sh
PROGRAM spin
PROGRAM crash
PROGRAM ps
