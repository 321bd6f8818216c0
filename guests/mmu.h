// x86-64 segment selectors, descriptor bits, page-table bits, trap numbers.
#pragma once

// GDT layout (seg.c). User selectors carry RPL 3.
#define SEG_KCODE 0x08
#define SEG_KDATA 0x10
#define SEG_UDATA 0x18
#define SEG_UCODE 0x20
#define SEG_TSS 0x28   // 16-byte system descriptor: slots 5 and 6
#define SEG_SYSGATE 0x38  // 16-byte call gate, DPL 3: the system-call door (slots 7 and 8)
#define USER_RPL 3

// Page-table entry bits.
#define PTE_P 0x001
#define PTE_W 0x002
#define PTE_U 0x004
#define PTE_PS 0x080
#define PGSIZE 4096

// User address space: one private 1 GiB slot (PDPT entry 1).
#define USER_BASE 0x40000000UL
#define USER_TOP 0x80000000UL
#define USER_STACK_PAGES 4

// Exceptions and interrupts.
#define T_DIVIDE 0
#define T_DEBUG 1
#define T_NMI 2
#define T_BRKPT 3
#define T_OFLOW 4
#define T_BOUND 5
#define T_ILLOP 6
#define T_DEVICE 7
#define T_DBLFLT 8
#define T_TSS 10
#define T_SEGNP 11
#define T_STACK 12
#define T_GPFLT 13
#define T_PGFLT 14
#define T_FPERR 16
#define T_ALIGN 17
#define T_MCHK 18
#define T_SIMDERR 19
