// Virtual memory: a page allocator and 4-level page tables.
// The kernel sees all of guest RAM at its physical address (identity map,
// supervisor only). Each process also has a private slot at USER_BASE.
#include "bootinfo.h"
#include "defs.h"
#include "mmu.h"
#include "x86.h"

extern char _end[];  // first byte after the kernel image (kernel.ld)

static uint64 kpml4[512] __attribute__((aligned(4096)));
static uint64 kpdpt[512] __attribute__((aligned(4096)));
static uint64 kpd[512] __attribute__((aligned(4096)));
static uint64 kpt0[512] __attribute__((aligned(4096)));  // first 2 MiB in 4 KiB pages

struct run {
  struct run *next;
};
static struct run *freelist;  // pages given back
static uint64 nfree;
static uint64 next_fresh, mem_end;  // never-used pages: handed out in order, so
                                    // guest RAM the kernel never needs stays untouched

void *kalloc(void) {
  struct run *r = freelist;
  if (r) {
    freelist = r->next;
    nfree--;
  } else if (next_fresh + PGSIZE <= mem_end) {
    r = (struct run *)next_fresh;
    next_fresh += PGSIZE;
  } else {
    return NULL;
  }
  memset(r, 0, PGSIZE);
  return r;
}

void kfree(void *page) {
  struct run *r = page;
  r->next = freelist;
  freelist = r;
  nfree++;
}

uint64 kmem_free_pages(void) { return nfree + (mem_end - next_fresh) / PGSIZE; }

void kvm_init(void) {
  uint64 mem = bootinfo->mem_bytes;
  // Page 0 stays unmapped so a NULL dereference faults, in the kernel too.
  for (uint64 i = 1; i < 512; i++) kpt0[i] = (i * PGSIZE) | PTE_P | PTE_W;
  kpd[0] = (uint64)kpt0 | PTE_P | PTE_W;
  for (uint64 i = 1; i < 512 && i * 0x200000 < mem; i++) kpd[i] = (i * 0x200000) | PTE_P | PTE_W | PTE_PS;
  kpdpt[0] = (uint64)kpd | PTE_P | PTE_W;
  kpml4[0] = (uint64)kpdpt | PTE_P | PTE_W | PTE_U;  // U here; leaves decide who may touch
  __asm__ volatile(
      "mov %%cr4, %%rax; or $0x20, %%rax; mov %%rax, %%cr4\n"  // PAE
      "mov %0, %%cr3\n"
      "mov %%cr0, %%rax; bts $31, %%rax; bts $16, %%rax; mov %%rax, %%cr0\n"  // PG, WP
      :
      : "r"((uint64)kpml4)
      : "rax", "memory");
  next_fresh = ((uint64)_end + PGSIZE - 1) & ~(uint64)(PGSIZE - 1);
  mem_end = mem;
}

// A new address space: the kernel's identity map plus an empty user slot.
uint64 *uvm_create(void) {
  uint64 *pml4 = kalloc(), *pdpt = kalloc();
  if (!pml4 || !pdpt) {
    if (pml4) kfree(pml4);
    return NULL;
  }
  pdpt[0] = (uint64)kpd | PTE_P | PTE_W;
  pml4[0] = (uint64)pdpt | PTE_P | PTE_W | PTE_U;
  return pml4;
}

// Map one user page at va; page tables are allocated on demand.
int uvm_map(uint64 *pml4, uint64 va, void *page, int writable) {
  uint64 *pdpt = (uint64 *)(pml4[0] & ~0xfffUL);
  uint64 *table = pdpt;
  int shifts[2] = {30, 21};
  for (int level = 0; level < 2; level++) {
    uint64 *e = &table[(va >> shifts[level]) & 511];
    if (!(*e & PTE_P)) {
      void *t = kalloc();
      if (!t) return -1;
      *e = (uint64)t | PTE_P | PTE_W | PTE_U;
    }
    table = (uint64 *)(*e & ~0xfffUL);
  }
  table[(va >> 12) & 511] = (uint64)page | PTE_P | PTE_U | (writable ? PTE_W : 0);
  return 0;
}

// Free the user slot's pages and tables, then the top two levels.
void uvm_free(uint64 *pml4) {
  uint64 *pdpt = (uint64 *)(pml4[0] & ~0xfffUL);
  uint64 pde = pdpt[USER_BASE >> 30];
  if (pde & PTE_P) {
    uint64 *pd = (uint64 *)(pde & ~0xfffUL);
    for (int i = 0; i < 512; i++) {
      if (!(pd[i] & PTE_P)) continue;
      uint64 *pt = (uint64 *)(pd[i] & ~0xfffUL);
      for (int j = 0; j < 512; j++)
        if (pt[j] & PTE_P) kfree((void *)(pt[j] & ~0xfffUL));
      kfree(pt);
    }
    kfree(pd);
  }
  kfree(pdpt);
  kfree(pml4);
}

void uvm_switch(uint64 *pml4) { lcr3((uint64)pml4); }
void kvm_switch(void) { lcr3((uint64)kpml4); }

// Is [va, va+len) inside the user slot and mapped (writable if asked)?
// The kernel checks before touching a user pointer, so a bad pointer from a
// program is that program's error, never a kernel fault.
int uvm_check(uint64 *pml4, uint64 va, uint64 len, int write) {
  if (va < USER_BASE || va >= USER_TOP || len > USER_TOP - va) return 0;
  uint64 *pdpt = (uint64 *)(pml4[0] & ~0xfffUL);
  for (uint64 p = va & ~(uint64)(PGSIZE - 1); p < va + len; p += PGSIZE) {
    uint64 pde = pdpt[(p >> 30) & 511];
    if (!(pde & PTE_P)) return 0;
    uint64 pte = ((uint64 *)(pde & ~0xfffUL))[(p >> 21) & 511];
    if (!(pte & PTE_P)) return 0;
    uint64 e = ((uint64 *)(pte & ~0xfffUL))[(p >> 12) & 511];
    if (!(e & PTE_P) || !(e & PTE_U) || (write && !(e & PTE_W))) return 0;
  }
  return 1;
}
