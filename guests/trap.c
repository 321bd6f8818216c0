// Traps: the interrupt descriptor table and what happens on each vector.
// A fault in user mode kills only that process; a fault in kernel mode
// stops the whole partition with a bugcheck, as Windows does.
#include "bootinfo.h"
#include "defs.h"
#include "mmu.h"
#include "proc.h"
#include "vmbus.h"
#include "x86.h"

#define NVEC 64  // 0-31 exceptions, 32-47 the PICs' IRQs, 48 (0x30) VMBus's SINT2
static uint64 idt[NVEC * 2] __attribute__((aligned(16)));
extern uint64 vectors[];  // entry.S: the address of each vector's stub

static const char *fault_names[] = {
    "divide error (#DE)", "debug (#DB)", "NMI", "breakpoint (#BP)", "overflow (#OF)",
    "bound range (#BR)", "invalid opcode (#UD)", "device not available (#NM)", "double fault (#DF)",
    "coprocessor overrun", "invalid TSS (#TS)", "segment not present (#NP)", "stack fault (#SS)",
    "general protection fault (#GP)", "page fault (#PF)", "reserved", "x87 error (#MF)",
    "alignment check (#AC)", "machine check (#MC)", "SIMD error (#XM)",
};

static const char *fault_name(uint64 v) { return v < 20 ? fault_names[v] : "exception"; }

// Interrupt gate (type 0xE): the CPU clears IF on entry, so handlers run with interrupts off.
static void set_gate(int vec, uint64 handler) {
  idt[vec * 2] = (handler & 0xffff) | ((uint64)SEG_KCODE << 16) | (0x8eUL << 40) |
                 (((handler >> 16) & 0xffff) << 48);
  idt[vec * 2 + 1] = handler >> 32;
}

void idt_init(void) {
  for (int v = 0; v < NVEC; v++) set_gate(v, vectors[v]);
  struct {
    uint16 limit;
    uint64 base;
  } __attribute__((packed)) idtr = {sizeof(idt) - 1, (uint64)idt};
  __asm__ volatile("lidt %0" : : "m"(idtr));
}

static void describe_page_fault(uint64 err, uint64 cr2) {
  kprintf("%s of %p (%s, %s mode)", (err & 0x10) ? "instruction fetch" : (err & 2) ? "write" : "read", cr2,
          (err & 1) ? "protection violation" : "page not present", (err & 4) ? "user" : "kernel");
}

static void user_fault(struct trapframe *tf) {
  struct proc *p = myproc();
  kprintf("\n%s[%d]: killed by %s at rip %p", p->name, p->pid, fault_name(tf->vector), tf->rip);
  if (tf->vector == T_PGFLT) {
    kputs(": ");
    describe_page_fault(tf->err, rcr2());
    kprintf(" [cr2 %p, error code %lx]", rcr2(), tf->err);
  } else if (tf->vector == T_GPFLT) {
    kprintf(" (error code %lx)", tf->err);
  }
  kputs("\n");
  proc_exit(-(int)tf->vector - 1);
}

void trap(struct trapframe *tf) {
  if (tf->vector == IRQ_BASE + IRQ_COM1) {
    uart_intr();
    pic_eoi(IRQ_COM1);
  } else if (tf->vector == VMBUS_VECTOR) {
    synic_intr();
    if ((tf->cs & 3) == USER_RPL) ic_idle();  // a shutdown the host asked for runs at a safe point
  } else if (tf->vector >= IRQ_BASE && tf->vector < IRQ_BASE + 16) {
    pic_eoi((int)(tf->vector - IRQ_BASE));
  } else if (tf->vector >= IRQ_BASE) {
    // a vector nothing is routed to: ignore it
  } else if ((tf->cs & 3) == USER_RPL) {
    user_fault(tf);
  } else if (tf->vector == T_PGFLT) {
    uint64 cr2 = rcr2();
    bugcheck(0x50, cr2, (tf->err & 2) ? 1 : 0, tf->rip, tf->err);  // PAGE_FAULT_IN_NONPAGED_AREA
  } else {
    bugcheck(0x7f, tf->vector, tf->err, tf->rip, tf->rsp);  // UNEXPECTED_KERNEL_MODE_TRAP
  }
  // Back to user mode: a process stopped with Ctrl-C exits here.
  if ((tf->cs & 3) == USER_RPL && myproc() && myproc()->killed) {
    kputs("^C\n");
    proc_exit(-130);
  }
}

static const char *stop_name(uint32 code) {
  switch (code) {
    case 0x50: return "PAGE_FAULT_IN_NONPAGED_AREA";
    case 0x7f: return "UNEXPECTED_KERNEL_MODE_TRAP";
    default: return "KERNEL_BUGCHECK";
  }
}

// The blue stop screen. Nothing in this partition runs after it; the
// hypervisor is told through the panic port and marks the partition crashed.
void bugcheck(uint32 code, uint64 p1, uint64 p2, uint64 p3, uint64 p4) {
  cli();
  kputs("\x1b[0m\x1b[44;97m\x1b[2J\x1b[H\n");
  kputs("  A problem has been detected and this partition has been stopped\n");
  kputs("  to prevent damage to its data. The other partitions keep running.\n\n");
  kprintf("  %s\n\n", stop_name(code));
  if (code == 0x50) {
    kputs("  The kernel touched memory that is not mapped: ");
    describe_page_fault(p4, p1);
    kputs("\n\n");
  } else if (code == 0x7f) {
    kprintf("  The kernel took an unexpected %s.\n\n", fault_name(p1));
  }
  kputs("  Technical information:\n\n");
  kprintf("  *** STOP: 0x%08x (%p, %p, %p, %p)\n\n", code, p1, p2, p3, p4);
  kprintf("  Partition: %s\n", bootinfo->name);
  hv_bugcheck_notify();
  for (;;) __asm__ volatile("cli; hlt");
}
