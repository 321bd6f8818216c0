# Where every user program starts: the kernel enters ring 3 here with the
# argument string in %rdi. main's return value becomes the exit status.
.code64
.section .text.entry
.globl _start
_start:
  call main
  mov %eax, %edi
  call exit
1: jmp 1b
