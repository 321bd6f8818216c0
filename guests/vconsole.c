// The synthetic console: hyperlab's VMBus device for a text console
// (docs/vmbus.md §6; Hyper-V itself has none). Inband packets both ways,
// the payload is raw bytes: what the kernel prints goes out, what the
// student types comes in. Once the channel is open, console.c sends all
// kernel output here instead of the emulated UART, whose every byte costs
// port-I/O exits; the UART stays for the boot messages before that.
#include "bootinfo.h"
#include "defs.h"
#include "vmbus.h"
#include "x86.h"

#define VCONSOLE_MAX 1024   // bytes per packet, both ways
#define FULL_WAIT_MS 2000   // how long output waits for room in the ring before it is dropped

static struct vmbus_channel *chan;
static int active;
static char out[VCONSOLE_MAX];  // output collected into one packet
static uint32 out_len;
static uint8 in[VCONSOLE_MAX + 8];  // typed bytes the console's buffer had no room for yet
static uint32 in_head, in_len;

int vconsole_active(void) { return active && chan->state == CH_OPEN; }

static void on_open(struct vmbus_channel *ch) {
  kprintf("vconsole: the console continues on VMBus channel %u\n", ch->relid);  // the UART's last words
  chan = ch;
  active = 1;
}

void vconsole_putc(char c) {
  out[out_len++] = c;
  if (out_len == sizeof(out)) vconsole_flush();
}

// Send what was collected as one packet. A full ring means the host has not
// caught up yet: it drains when the root runs, so we wait a little.
void vconsole_flush(void) {
  if (!out_len) return;
  if (!vconsole_active()) {  // the channel failed meanwhile: back to the UART
    for (uint32 i = 0; i < out_len; i++) uart_putc(out[i]);
    out_len = 0;
    return;
  }
  uint64 deadline = rdtsc() + (uint64)FULL_WAIT_MS * bootinfo->tsc_khz;
  int r;
  while ((r = vmbus_send(chan, VM_PKT_DATA_INBAND, 0, 0, NULL, 0, out, out_len)) == RING_FULL && rdtsc() < deadline)
    cpu_relax();
  if (r < 0) vmbus_bad_packet(chan, "console output dropped: the host did not read the ring");
  out_len = 0;
}

// Wait (up to ms) until the host has read everything we sent: before
// leaving VMBus, so the last words reach the screen.
void vconsole_sync(uint32 ms) {
  vconsole_flush();
  uint64 deadline = rdtsc() + (uint64)ms * bootinfo->tsc_khz;
  while (vconsole_active() && !ring_empty(&chan->out) && rdtsc() < deadline) cpu_relax();
}

// Hand typed bytes to the console while it has room. NUL bytes are the
// ring's padding to 8 bytes, not keys.
static void deliver(void) {
  while (in_head < in_len && !console_full()) {
    uint8 c = in[in_head++];
    if (c) console_input((char)c);
  }
  if (in_head == in_len) in_head = in_len = 0;
}

static void on_packet(struct vmbus_channel *ch, const struct vmpacket_descriptor *d, const uint8 *payload,
                      uint32 len) {
  if (d->type != VM_PKT_DATA_INBAND) return vmbus_bad_packet(ch, "console packet that is not inband");
  if (len > sizeof(in)) return vmbus_bad_packet(ch, "console packet longer than 1 KiB");
  memcpy(in, payload, len);
  in_head = 0;
  in_len = len;
  deliver();
}

// Flow control: while typed bytes wait for the console, packets stay in the
// ring (and a long paste waits in the host, losing nothing).
static int can_receive(struct vmbus_channel *ch) {
  (void)ch;
  return in_len == 0;
}

// console_read made room: take what waits here, then what waits in the ring.
void vconsole_pull(void) {
  if (!vconsole_active()) return;
  deliver();
  if (in_len == 0) vmbus_drain(chan);
}

const struct vmbus_driver vconsole_driver = {
    .name = "console",
    .if_type = GUID(0x8b60ccf6, 0x709f, 0x4c11, 0x90, 0xb5, 0x22, 0x9c, 0x95, 0x9a, 0x9e, 0x6a),
    .on_open = on_open,
    .on_packet = on_packet,
    .can_receive = can_receive,
};
