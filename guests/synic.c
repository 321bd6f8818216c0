// The synthetic interrupt controller (SynIC): how the hypervisor tells this
// partition that VMBus has something for it (docs/vmbus.md §1).
//
// Two pages are shared with the hypervisor. The message page has 16 slots
// of 256 bytes, one per SINT; the hypervisor writes a message into a free
// slot and raises the SINT's vector. The event flags page has 2048 bits per
// SINT; bit r set means "channel r has packets for you". VMBus uses SINT2,
// which we route to vector 0x30.
//
// Real Hyper-V programs the SynIC through MSRs; Unicorn cannot trap wrmsr,
// so we use HvCallSetVpRegisters, as Linux does on arm64 (hv_set_vpreg).
#include "defs.h"
#include "mmu.h"
#include "vmbus.h"
#include "x86.h"

#define HVCALL_SET_VP_REGISTERS 0x0051

#define HV_REGISTER_SINT0 0x000a0000
#define HV_REGISTER_SCONTROL 0x000a0010
#define HV_REGISTER_SIEFP 0x000a0012
#define HV_REGISTER_SIMP 0x000a0013
#define HV_REGISTER_EOM 0x000a0014

#define SINT_MASKED (1UL << 16)
#define SINT_AUTO_EOI (1UL << 17)  // we have no local APIC to send an EOI to

#define HVMSG_NONE 0
#define HV_MESSAGE_PAYLOAD_MAX 240
#define MSG_FLAG_PENDING 0x1  // more messages are queued behind this one: write EOM

struct hv_message {
  uint32 message_type;  // HVMSG_NONE: the slot is free
  uint8 payload_size;
  uint8 message_flags;
  uint16 reserved;
  uint64 port;
  uint8 payload[HV_MESSAGE_PAYLOAD_MAX];
};
_Static_assert(sizeof(struct hv_message) == 256, "one message slot");

static struct hv_message simp[16] __attribute__((aligned(PGSIZE)));  // message page
static uint64 siefp[512] __attribute__((aligned(PGSIZE)));           // event flags page: 16 x 2048 bits
static uint8 regs_in[PGSIZE] __attribute__((aligned(PGSIZE)));       // hypercall input page

static int enabled;
static int polling;  // inside synic_poll: never re-entered
static volatile uint64 irqs;

// HvCallSetVpRegisters on our own VP: a rep hypercall, one 32-byte element per register.
static uint64 set_registers(const uint32 *names, const uint64 *values, int count) {
  memset(regs_in, 0, 16 + count * 32);
  *(uint64 *)&regs_in[0] = ~0UL;         // PartitionId: HV_PARTITION_ID_SELF
  *(uint32 *)&regs_in[8] = 0xfffffffe;  // VpIndex: HV_VP_INDEX_SELF
  for (int i = 0; i < count; i++) {
    uint8 *e = regs_in + 16 + i * 32;
    *(uint32 *)e = names[i];
    *(uint64 *)(e + 16) = values[i];  // ValueLow; ValueHigh stays 0
  }
  return hypercall(HVCALL_SET_VP_REGISTERS | ((uint64)count << 32), (uint64)regs_in, 0);
}

// Enable the SynIC with our two pages and SINT2 -> vector 0x30. Returns the
// hypercall status (0: success).
int synic_init(void) {
  memset(simp, 0, sizeof(simp));
  memset(siefp, 0, sizeof(siefp));
  uint32 names[] = {HV_REGISTER_SIMP, HV_REGISTER_SIEFP, HV_REGISTER_SINT0 + VMBUS_SINT, HV_REGISTER_SCONTROL};
  uint64 values[] = {(uint64)simp | 1, (uint64)siefp | 1, VMBUS_VECTOR | SINT_AUTO_EOI, 1};
  uint64 st = set_registers(names, values, 4);
  enabled = st == HV_STATUS_SUCCESS;
  return (int)st;
}

// Mask SINT2 and switch the SynIC off: nothing more arrives.
void synic_disable(void) {
  uint32 names[] = {HV_REGISTER_SINT0 + VMBUS_SINT, HV_REGISTER_SCONTROL, HV_REGISTER_SIMP, HV_REGISTER_SIEFP};
  uint64 values[] = {SINT_MASKED, 0, 0, 0};
  set_registers(names, values, 4);
  enabled = 0;
}

// Take the message out of slot 2 and free the slot. If the hypervisor has
// more queued (MessageFlags bit 0, read after freeing, as Linux's
// vmbus_signal_eom does), EOM makes it deliver the next one.
static int take_message(uint8 *buf, uint32 *size) {
  struct hv_message *m = &simp[VMBUS_SINT];
  if (m->message_type == HVMSG_NONE) return 0;
  mb();
  uint32 n = m->payload_size;
  if (n > HV_MESSAGE_PAYLOAD_MAX) n = HV_MESSAGE_PAYLOAD_MAX;  // never trust a length blindly
  memcpy(buf, m->payload, n);
  *size = n;
  m->message_type = HVMSG_NONE;
  mb();
  if (m->message_flags & MSG_FLAG_PENDING) {
    uint32 eom = HV_REGISTER_EOM;
    uint64 zero = 0;
    set_registers(&eom, &zero, 1);
  }
  return 1;
}

// Atomically clear bit `bit` of *word; returns whether it was set.
static int test_and_clear(volatile uint64 *word, uint64 bit) {
  uint8 was;
  __asm__ volatile("lock btrq %2, %0; setc %1" : "+m"(*word), "=q"(was) : "r"(bit) : "memory", "cc");
  return was;
}

// Every channel whose bit is set in SINT2's flags has packets to read.
static void take_events(void) {
  volatile uint64 *flags = &siefp[VMBUS_SINT * 256 / 8];
  for (uint32 w = 0; w < 2048 / 64; w++) {
    if (!flags[w]) continue;
    for (uint32 b = 0; b < 64; b++)
      if (test_and_clear(&flags[w], b)) vmbus_on_event(w * 64 + b);
  }
}

// Handle whatever the hypervisor delivered: messages first (they open and
// close channels), then channel events. Called from the interrupt and from
// code that waits with interrupts off.
void synic_poll(void) {
  static uint8 msg[HV_MESSAGE_PAYLOAD_MAX];
  if (!enabled || polling) return;
  polling = 1;
  uint32 size;
  for (int i = 0; i < 64 && take_message(msg, &size); i++) vmbus_on_message(msg, size);
  take_events();
  polling = 0;
}

// Vector 0x30 (trap.c). With auto-EOI there is nothing to acknowledge.
void synic_intr(void) {
  irqs++;
  synic_poll();
}

uint64 synic_interrupts(void) { return irqs; }
