// Talking to the hypervisor: detection through CPUID, and hypercalls.
//
// A hypercall is the `vmcall` instruction with the Hyper-V TLFS x64
// convention: RCX = input value (call code in bits 15:0), RDX = guest
// physical address of the input page, R8 = of the output page; the
// hypervisor returns the status in RAX (bits 15:0). Kernel memory is
// identity-mapped, so a kernel address is its guest physical address.
#include "bootinfo.h"
#include "defs.h"
#include "vmbus.h"
#include "x86.h"

#define HVCALL_GET_PARTITION_PROPERTY 0x0044
#define HVCALL_SET_PARTITION_PROPERTY 0x0045
#define HVCALL_GET_PARTITION_ID 0x0046
#define HVCALL_GET_NEXT_CHILD_PARTITION 0x0047
#define HVCALL_HL_REGISTER_STATS 0x8001  // hyperlab only: where this kernel keeps its counters

// hyperlab partition properties (Hyper-V keeps this state in the root's VMMS).
#define HV_PROPERTY_HL_STATE 0x00ff0001
#define HV_PROPERTY_HL_NAME 0x00ff0002

#define HV_STATUS_SUCCESS 0
#define HV_STATUS_ACCESS_DENIED 6

#define PVPANIC_PORT 0x505  // the panic notification port QEMU's pvpanic device uses

// The stats page: slots this kernel counts in (the hypervisor reads them for its
// telemetry), and one the hypervisor writes (core/steal.py: STEAL_SLOT).
#define STATS_SYSCALLS 0
#define STATS_SIGNALS_SUPPRESSED 1
#define STATS_STEAL 16  // TSC ticks our VP was ready to run but did not: other partitions ran

static uint8 hc_in[4096] __attribute__((aligned(4096)));
static uint8 hc_out[4096] __attribute__((aligned(4096)));
static uint64 stats_page[512] __attribute__((aligned(4096)));

static int present, is_root;
static char vendor[13], interface_id[5];

uint64 hypercall(uint64 code, uint64 in_gpa, uint64 out_gpa) {
  uint64 status;
  register uint64 r8 __asm__("r8") = out_gpa;
  __asm__ volatile("vmcall" : "=a"(status) : "c"(code), "d"(in_gpa), "r"(r8) : "memory");
  return status & 0xffff;
}

void hv_init(void) {
  uint32 a, b, c, d;
  cpuid(1, &a, &b, &c, &d);
  present = (c >> 31) & 1;  // CPUID.1:ECX[31]: running under a hypervisor
  if (present) {
    cpuid(0x40000000, &a, &b, &c, &d);
    memcpy(vendor, &b, 4);
    memcpy(vendor + 4, &c, 4);
    memcpy(vendor + 8, &d, 4);
    cpuid(0x40000001, &a, &b, &c, &d);
    memcpy(interface_id, &a, 4);
    cpuid(0x40000003, &a, &b, &c, &d);
    is_root = b & 1;  // CreatePartitions privilege: only the root partition has it
    // Lab instrumentation: let the hypervisor read this kernel's own counters.
    stat_syscalls = &stats_page[STATS_SYSCALLS];
    stat_signals_suppressed = &stats_page[STATS_SIGNALS_SUPPRESSED];
    *(uint64 *)hc_in = (uint64)stats_page;
    hypercall(HVCALL_HL_REGISTER_STATS, (uint64)hc_in, 0);
  }
}

int hv_present(void) { return present; }

// The clock for timing this partition's own work: the TSC, which runs on
// while other partitions have the CPU, minus the time the hypervisor says
// our VP was kept from running. It writes that only while our VP is
// stopped: if it changed between our two reads, we were stopped in
// between, so read again.
uint64 vp_clock(void) {
  volatile uint64 *steal = &stats_page[STATS_STEAL];
  for (;;) {
    uint64 s = *steal, t = rdtsc();
    if (*steal == s) return t - s;
  }
}
int hv_is_root(void) { return is_root; }
// The Hyper-V hypercall interface (CPUID 0x40000001 = "Hv#1"): what VMBus needs.
int hv_interface_hv1(void) { return present && strcmp(interface_id, "Hv#1") == 0; }

int hv_info(char *buf, int n) {
  if (!present) return snprintf_u(buf, n, "hypervisor: none detected (CPUID.1:ECX[31] is clear)\n");
  uint64 id = 0;
  if (hypercall(HVCALL_GET_PARTITION_ID, 0, (uint64)hc_out) == HV_STATUS_SUCCESS) id = *(uint64 *)hc_out;
  return snprintf_u(buf, n,
                    "hypervisor: present (CPUID.1:ECX[31]), vendor \"%s\", interface \"%s\"\n"
                    "partition:  %s, id %lu, role %s\n",
                    vendor, interface_id, bootinfo->name, id,
                    is_root ? "root (has the CreatePartitions privilege)" : "child");
}

static const char *state_names[] = {"off", "starting", "running", "paused", "stopping", "crashed"};

static uint64 get_property(uint64 id, uint32 code, uint64 *value) {
  uint64 *in = (uint64 *)hc_in;
  in[0] = id;
  in[1] = code;
  uint64 st = hypercall(HVCALL_GET_PARTITION_PROPERTY, (uint64)hc_in, (uint64)hc_out);
  *value = *(uint64 *)hc_out;
  return st;
}

// vm list: walk the children with HvCallGetNextChildPartition.
int hv_vm_list(char *buf, int n) {
  int len = snprintf_u(buf, n, "ID  NAME      STATE\n");
  uint64 prev = 0;
  for (;;) {
    uint64 *in = (uint64 *)hc_in;
    in[0] = 0;  // parent: this partition
    in[1] = prev;
    uint64 st = hypercall(HVCALL_GET_NEXT_CHILD_PARTITION, (uint64)hc_in, (uint64)hc_out);
    if (st != HV_STATUS_SUCCESS) return -(int)st;
    uint64 next = *(uint64 *)hc_out;
    if (!next) break;
    uint64 state, name;
    if ((st = get_property(next, HV_PROPERTY_HL_STATE, &state)) != HV_STATUS_SUCCESS) return -(int)st;
    if ((st = get_property(next, HV_PROPERTY_HL_NAME, &name)) != HV_STATUS_SUCCESS) return -(int)st;
    char nm[9];
    memcpy(nm, &name, 8);
    nm[8] = 0;
    len += snprintf_u(buf + len, n - len, "%2lu  %-8s  %s\n", next, nm, state < 6 ? state_names[state] : "?");
    prev = next;
  }
  return len;
}

// vm start / vm stop: find the child by name, then set its state property.
int hv_vm_set_state(const char *name, uint64 state) {
  uint64 prev = 0;
  for (;;) {
    uint64 *in = (uint64 *)hc_in;
    in[0] = 0;
    in[1] = prev;
    uint64 st = hypercall(HVCALL_GET_NEXT_CHILD_PARTITION, (uint64)hc_in, (uint64)hc_out);
    if (st != HV_STATUS_SUCCESS) return -(int)st;
    uint64 next = *(uint64 *)hc_out, nmv;
    if (!next) return -0x0d;  // HV_STATUS_INVALID_PARTITION_ID
    if ((st = get_property(next, HV_PROPERTY_HL_NAME, &nmv)) != HV_STATUS_SUCCESS) return -(int)st;
    char nm[9];
    memcpy(nm, &nmv, 8);
    nm[8] = 0;
    if (strcmp(nm, name) == 0) {
      in[0] = next;
      in[1] = HV_PROPERTY_HL_STATE;
      in[2] = state;
      st = hypercall(HVCALL_SET_PARTITION_PROPERTY, (uint64)hc_in, 0);
      return -(int)st;
    }
    prev = next;
  }
}

void hv_bugcheck_notify(void) { outb(PVPANIC_PORT, 1); }
