// Declarations shared by the kernel's files (one file per concept, as in xv6).
#pragma once
#include "types.h"

struct bootinfo;
struct trapframe;
struct proc;

// main.c
extern struct bootinfo *bootinfo;
uint64 uptime_us(void);

// console.c
void kputc(char c);
void kputs(const char *s);
void kprintf(const char *fmt, ...);
void console_input(char c);
int console_full(void);
int console_read(char *buf, int n);
void console_flush(void);

// uart.c
void uart_init(void);
void uart_putc(char c);
void uart_intr(void);

// pic.c
void pic_init(void);
void pic_eoi(int irq);
#define IRQ_BASE 32
#define IRQ_COM1 4

// seg.c
void seg_init(void);
void tss_set_rsp0(uint64 rsp0);

// trap.c
void idt_init(void);
void trap(struct trapframe *tf);
void bugcheck(uint32 code, uint64 p1, uint64 p2, uint64 p3, uint64 p4) __attribute__((noreturn));

// vm.c
void kvm_init(void);
void *kalloc(void);
void kfree(void *page);
uint64 *uvm_create(void);
int uvm_map(uint64 *pml4, uint64 va, void *page, int writable);
void uvm_free(uint64 *pml4);
void uvm_switch(uint64 *pml4);
void kvm_switch(void);
uint64 kmem_free_pages(void);
int uvm_check(uint64 *pml4, uint64 va, uint64 len, int write);

// proc.c
void proc_init(void);
int proc_spawn(const char *name, const char *arg);
void proc_exit(int status) __attribute__((noreturn));
void proc_kill_current(const char *why) __attribute__((noreturn));
void proc_start_shell(void) __attribute__((noreturn));
struct proc *myproc(void);
int proc_list(char *buf, int n);
void proc_interrupt_foreground(void);
int proc_foreground_program(void);

// syscall.c
extern volatile uint64 *stat_syscalls;
uint64 syscall(uint64 num, uint64 a0, uint64 a1, uint64 a2, uint64 a3);

// hv.c
void hv_init(void);
int hv_present(void);
uint64 vp_clock(void);
int hv_is_root(void);
int hv_info(char *buf, int n);
int hv_vm_list(char *buf, int n);
int hv_vm_set_state(const char *name, uint64 state);
void hv_bugcheck_notify(void);
int hv_interface_hv1(void);
uint64 hypercall(uint64 code, uint64 in_gpa, uint64 out_gpa);

// disk.c (the driver interface is in disk.h)
void disk_init(void);
uint64 disk_sectors(void);
int disk_read(uint64 lba, uint32 n, void *buf);
int disk_write(uint64 lba, uint32 n, const void *buf);
int disk_flush(void);
int64 disk_bench(int write, uint32 n);

// fat.c
struct dirent;
int fat_readdir(uint32 slot, struct dirent *out);
int fat_read(const char *name, uint32 offset, void *buf, uint32 max);
int fat_write(const char *name, const void *data, uint32 len);
int fat_remove(const char *name);
int fat_scratch_sectors(void);

// string.c
void *memset(void *dst, int c, uint64 n);
void *memcpy(void *dst, const void *src, uint64 n);
int strcmp(const char *a, const char *b);
uint64 strlen(const char *s);
char *strncpy_z(char *dst, const char *src, uint64 n);
int snprintf_u(char *buf, int n, const char *fmt, ...);
