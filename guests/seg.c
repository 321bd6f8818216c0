// Segments: the GDT, the TSS (where the CPU finds the kernel stack when it
// enters ring 0 from ring 3) and the call gate that is the system-call door.
#include "defs.h"
#include "mmu.h"

struct tss {
  uint32 reserved0;
  uint64 rsp0, rsp1, rsp2;
  uint64 reserved1;
  uint64 ist[7];
  uint64 reserved2;
  uint16 reserved3;
  uint16 iomap_base;
} __attribute__((packed));

static struct tss tss;
static uint64 gdt[9] __attribute__((aligned(16)));

extern char sysgate[];

// A 16-byte system descriptor (TSS) or gate occupies two slots.
static void set_tss_desc(int slot, uint64 base, uint32 limit) {
  gdt[slot] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89UL << 40) |
              ((uint64)((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
  gdt[slot + 1] = base >> 32;
}

// 64-bit call gate (type 0xC), present, callable from ring 3, landing in kernel code.
static void set_call_gate(int slot, uint64 target) {
  gdt[slot] = (target & 0xffff) | ((uint64)SEG_KCODE << 16) | ((0x80UL | (3 << 5) | 0xc) << 40) |
              (((target >> 16) & 0xffff) << 48);
  gdt[slot + 1] = target >> 32;
}

void seg_init(void) {
  gdt[0] = 0;
  gdt[SEG_KCODE / 8] = 0x00209a0000000000;  // 64-bit code, DPL 0
  gdt[SEG_KDATA / 8] = 0x0000920000000000;  // data, DPL 0
  gdt[SEG_UDATA / 8] = 0x0000f20000000000;  // data, DPL 3
  gdt[SEG_UCODE / 8] = 0x0020fa0000000000;  // 64-bit code, DPL 3
  tss.iomap_base = sizeof(tss);             // no I/O bitmap: ring 3 gets no ports
  set_tss_desc(SEG_TSS / 8, (uint64)&tss, sizeof(tss) - 1);
  set_call_gate(SEG_SYSGATE / 8, (uint64)sysgate);

  struct {
    uint16 limit;
    uint64 base;
  } __attribute__((packed)) gdtr = {sizeof(gdt) - 1, (uint64)gdt};
  __asm__ volatile("lgdt %0" : : "m"(gdtr));
  // Reload CS with a far return, then the data segments, then the task register.
  __asm__ volatile(
      "pushq %0\n"
      "lea 1f(%%rip), %%rax\n"
      "pushq %%rax\n"
      "lretq\n"
      "1:\n"
      "mov %1, %%ax\n"
      "mov %%ax, %%ds\n"
      "mov %%ax, %%es\n"
      "mov %%ax, %%ss\n"
      "xor %%eax, %%eax\n"
      "mov %%ax, %%fs\n"
      "mov %%ax, %%gs\n"
      "mov %2, %%ax\n"
      "ltr %%ax\n"
      :
      : "i"(SEG_KCODE), "i"(SEG_KDATA), "i"(SEG_TSS)
      : "rax", "memory");
}

void tss_set_rsp0(uint64 rsp0) { tss.rsp0 = rsp0; }
