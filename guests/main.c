// The kernel starts here: set up the CPU's tables, memory, devices, then the shell.
#include "bootinfo.h"
#include "defs.h"
#include "vmbus.h"
#include "x86.h"

struct bootinfo *bootinfo;
static uint64 boot_tsc;

uint64 uptime_us(void) { return (rdtsc() - boot_tsc) * 1000 / bootinfo->tsc_khz; }

void kmain(struct bootinfo *bi) {
  boot_tsc = rdtsc();
  bootinfo = bi;
  seg_init();   // GDT, TSS, system-call gate
  idt_init();   // exception and interrupt vectors
  kvm_init();   // page tables, page allocator
  pic_init();   // IRQs at vectors 32+
  uart_init();  // COM1 console
  hv_init();    // is there a hypervisor? which partition are we?
  kprintf("\nhyperlab kernel 0.1 (x86-64) on partition %s: %lu KiB free, %s\n", bi->name,
          kmem_free_pages() * 4, hv_present() ? (hv_is_root() ? "root partition" : "child partition")
                                              : "no hypervisor detected");
  vmbus_init();  // enlightened: VMBus channels for the disk, the console, the integration services
  disk_init();  // the first disk driver that finds its device
  vmbus_boot_done();
  proc_init();
  proc_start_shell();
}
