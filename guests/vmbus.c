// The VMBus connection: channel management messages with the host, the
// table of channels it offers, and packets on them (docs/vmbus.md §3-4;
// Linux drivers/hv/connection.c, channel_mgmt.c, channel.c).
//
// At boot: INITIATE_CONTACT -> VERSION_RESPONSE; REQUESTOFFERS -> one
// OFFERCHANNEL per device -> ALLOFFERS_DELIVERED; then per channel we know
// a driver for: GPADL_HEADER (the ring pages) -> GPADL_CREATED and
// OPENCHANNEL -> OPENCHANNEL_RESULT. Messages go to the host with
// HvCallPostMessage and come back in the SynIC's message slot 2.
//
// Nothing here may hang the kernel: every wait has a deadline, and an
// enlightened kernel whose host does not answer goes on with the emulated
// UART and IDE.
#include "bootinfo.h"
#include "defs.h"
#include "mmu.h"
#include "vmbus.h"
#include "x86.h"

#define HVCALL_POST_MESSAGE 0x005c
#define HVCALL_SIGNAL_EVENT 0x005d
#define HV_HYPERCALL_FAST (1UL << 16)  // input in registers, not in a page
#define HVMSG_CHANNEL_MESSAGE 1         // PostMessage MessageType for VMBus

#define VERSION_WIN10 0x00040000  // VMBus protocol 4.0
#define CONTACT_MS 1000           // how long a silent host gets before we fall back
#define REPLY_MS 2000             // ... and each later step
#define SPIN_NOTIFY 64            // polls before HvCallNotifyLongSpinWait (CPUID 0x40000004 EBX)
#define HVCALL_NOTIFY_LONG_SPIN_WAIT 0x0008

enum {
  CHANNELMSG_OFFERCHANNEL = 1,
  CHANNELMSG_REQUESTOFFERS = 3,
  CHANNELMSG_ALLOFFERS_DELIVERED = 4,
  CHANNELMSG_OPENCHANNEL = 5,
  CHANNELMSG_OPENCHANNEL_RESULT = 6,
  CHANNELMSG_GPADL_HEADER = 8,
  CHANNELMSG_GPADL_CREATED = 10,
  CHANNELMSG_INITIATE_CONTACT = 14,
  CHANNELMSG_VERSION_RESPONSE = 15,
  CHANNELMSG_UNLOAD = 16,
  CHANNELMSG_UNLOAD_RESPONSE = 17,
};

// The channel messages, laid out exactly as on the wire.
struct msg_header {
  uint32 msgtype;
  uint32 padding;
} __attribute__((packed));

struct msg_initiate_contact {
  struct msg_header h;
  uint32 vmbus_version_requested;
  uint32 target_vcpu;
  uint64 interrupt_page, monitor_page1, monitor_page2;  // hyperlab: not used, 0
} __attribute__((packed));

struct msg_version_response {
  struct msg_header h;
  uint8 version_supported;
  uint8 connection_state;
  uint16 padding;
  uint32 msg_conn_id;
} __attribute__((packed));

struct msg_offer_channel {
  struct msg_header h;
  struct guid if_type, if_instance;
  uint64 reserved1, reserved2;
  uint16 chn_flags, mmio_megabytes;
  uint8 user_def[120];
  uint16 sub_channel_index, reserved3;
  uint32 child_relid;
  uint8 monitorid, monitor_allocated;
  uint16 is_dedicated_interrupt;
  uint32 connection_id;
} __attribute__((packed));

struct msg_gpadl_header {
  struct msg_header h;
  uint32 child_relid;
  uint32 gpadl;
  uint16 range_buflen;  // bytes of gpa_range that follow
  uint16 rangecount;
  // one struct gpa_range:
  uint32 byte_count;
  uint32 byte_offset;
  uint64 pfn[VMBUS_RING_PAGES];
} __attribute__((packed));

struct msg_gpadl_created {
  struct msg_header h;
  uint32 child_relid, gpadl, creation_status;
} __attribute__((packed));

struct msg_open_channel {
  struct msg_header h;
  uint32 child_relid;
  uint32 openid;
  uint32 ringbuffer_gpadlhandle;
  uint32 target_vp;
  uint32 downstream_ringbuffer_pageoffset;  // where the host -> guest ring starts, in pages
  uint8 userdata[120];
} __attribute__((packed));

struct msg_open_result {
  struct msg_header h;
  uint32 child_relid, openid, status;
} __attribute__((packed));

_Static_assert(sizeof(struct msg_offer_channel) == 196, "OFFERCHANNEL layout");
_Static_assert(sizeof(struct msg_gpadl_header) <= 240, "GPADL_HEADER fits one message");

// The drivers we have, matched against the offers by interface type.
static const struct vmbus_driver *const drivers[] = {
    &storvsc_driver, &vconsole_driver, &heartbeat_driver, &shutdown_driver, &timesync_driver,
};

static enum { VMBUS_OFF, VMBUS_CONTACTING, VMBUS_CONNECTED, VMBUS_FAILED, VMBUS_UNLOADED } state;
static const char *off_reason = "Integration Services are not installed";
static volatile int contact_done, offers_done, unload_done;
static int version_ok, sleep_ok;
static int host_silent;  // a step timed out at boot: the host is not asked again
static uint64 messages, bad_messages, spurious_events;
static const char *bad_message_reason;

static struct vmbus_channel channels[VMBUS_MAX_CHANNELS];
static int nchannels;

// Ring pages for the channels we open: 1 + N pages out, 1 + N pages in, each.
#define RING_SETS 6
static uint8 ring_pool[RING_SETS][VMBUS_RING_PAGES * PGSIZE] __attribute__((aligned(PGSIZE)));
static int rings_used;
static uint32 next_gpadl = 0xe1e10;  // any nonzero handle unique in the partition (Linux starts here too)

static uint8 post_page[PGSIZE] __attribute__((aligned(PGSIZE)));  // HvCallPostMessage input

static int guid_eq(const struct guid *a, const struct guid *b) {
  for (int i = 0; i < 16; i++)
    if (a->b[i] != b->b[i]) return 0;
  return 1;
}

static uint64 ms_to_tsc(uint32 ms) { return (uint64)ms * bootinfo->tsc_khz; }

// ---- messages to the host -------------------------------------------------------------------

// HvCallPostMessage to connection 1. A full host queue (INSUFFICIENT_BUFFERS)
// is worth retrying for a while: the host drains it when it runs.
static uint64 post(const void *msg, uint32 size) {
  struct {
    uint32 connection_id, reserved, message_type, payload_size;
    uint8 payload[240];
  } *in = (void *)post_page;
  in->connection_id = VMBUS_MESSAGE_CONNECTION_ID;
  in->reserved = 0;
  in->message_type = HVMSG_CHANNEL_MESSAGE;
  in->payload_size = size;
  memcpy(in->payload, msg, size);
  uint64 deadline = rdtsc() + ms_to_tsc(REPLY_MS), st;
  while ((st = hypercall(HVCALL_POST_MESSAGE, (uint64)post_page, 0)) == HV_STATUS_INSUFFICIENT_BUFFERS &&
         rdtsc() < deadline)
    cpu_relax();
  return st;
}

// Wait until *done is set by a message or packet handler, or ms have passed.
// Returns 0, or -1 on timeout (or if channel ch failed meanwhile). During
// boot we spin (the SynIC is polled with interrupts off): a host that never
// answers must not leave us halted, and there is no timer to wake us. Once
// the system runs, we sleep in HLT between interrupts, so the CPU goes to
// the root, whose VSPs do the work we wait for.
int vmbus_wait(volatile int *done, struct vmbus_channel *ch, uint32 ms) {
  uint64 deadline = rdtsc() + ms_to_tsc(ms);
  for (uint64 spins = 1;; spins++) {
    synic_poll();
    if (ch) vmbus_drain(ch);
    if (*done) return 0;
    if (rdtsc() >= deadline || (ch && ch->state != CH_OPEN)) return -1;
    if (sleep_ok)
      sti_hlt();
    else if (spins % SPIN_NOTIFY == 0)
      // Spinning while the root has our request: tell the hypervisor, which gives
      // the CPU to the root now instead of at the end of our time slice.
      hypercall(HVCALL_NOTIFY_LONG_SPIN_WAIT | HV_HYPERCALL_FAST, spins, 0);
    else
      cpu_relax();
  }
}

// ---- messages from the host -------------------------------------------------------------------

static void bad_message(const char *why) {
  bad_messages++;
  bad_message_reason = why;
}

static struct vmbus_channel *by_relid(uint32 relid) {
  for (int i = 0; i < nchannels; i++)
    if (channels[i].relid == relid) return &channels[i];
  return NULL;
}

static void on_version_response(const struct msg_version_response *m) {
  if (state != VMBUS_CONTACTING) return bad_message("VERSION_RESPONSE nobody asked for");
  version_ok = m->version_supported;
  contact_done = 1;
}

static void on_offer(const struct msg_offer_channel *m) {
  uint32 relid = m->child_relid;
  if (relid == 0 || relid > VMBUS_MAX_RELID) return bad_message("offer with a relid outside 1..2047");
  if (by_relid(relid)) return bad_message("second offer for the same relid");
  if (nchannels == VMBUS_MAX_CHANNELS) return bad_message("more offers than the channel table holds");
  struct vmbus_channel *ch = &channels[nchannels++];
  memset(ch, 0, sizeof(*ch));
  ch->relid = relid;
  ch->connection_id = m->connection_id;
  ch->if_type = m->if_type;
  ch->state = CH_OFFERED;
  for (uint64 i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
    if (guid_eq(&drivers[i]->if_type, &m->if_type)) ch->drv = drivers[i];
}

static void on_gpadl_created(const struct msg_gpadl_created *m) {
  struct vmbus_channel *ch = by_relid(m->child_relid);
  if (!ch || ch->state != CH_OPENING || ch->gpadl != m->gpadl || ch->gpadl_done)
    return bad_message("GPADL_CREATED for no GPADL we asked for");
  ch->gpadl_status = m->creation_status;
  ch->gpadl_done = 1;
}

static void on_open_result(const struct msg_open_result *m) {
  struct vmbus_channel *ch = by_relid(m->child_relid);
  if (!ch || ch->state != CH_OPENING || m->openid != ch->relid || ch->open_done)
    return bad_message("OPENCHANNEL_RESULT for no channel we are opening");
  ch->open_status = m->status;
  ch->open_done = 1;
}

// A message from slot 2 of the SynIC's message page (synic.c). Each type
// must be at least as long as its layout before we look at its fields.
void vmbus_on_message(const uint8 *msg, uint32 size) {
  static const struct {
    uint32 type, size;
  } sizes[] = {
      {CHANNELMSG_VERSION_RESPONSE, sizeof(struct msg_version_response)},
      {CHANNELMSG_OFFERCHANNEL, sizeof(struct msg_offer_channel)},
      {CHANNELMSG_GPADL_CREATED, sizeof(struct msg_gpadl_created)},
      {CHANNELMSG_OPENCHANNEL_RESULT, sizeof(struct msg_open_result)},
  };
  messages++;
  if (size < sizeof(struct msg_header)) return bad_message("message shorter than its header");
  uint32 type = ((const struct msg_header *)msg)->msgtype;
  for (uint64 i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
    if (sizes[i].type == type && size < sizes[i].size) return bad_message("message too short for its type");
  switch (type) {
    case CHANNELMSG_VERSION_RESPONSE: on_version_response((const void *)msg); break;
    case CHANNELMSG_OFFERCHANNEL: on_offer((const void *)msg); break;
    case CHANNELMSG_ALLOFFERS_DELIVERED: offers_done = 1; break;
    case CHANNELMSG_GPADL_CREATED: on_gpadl_created((const void *)msg); break;
    case CHANNELMSG_OPENCHANNEL_RESULT: on_open_result((const void *)msg); break;
    case CHANNELMSG_UNLOAD_RESPONSE: unload_done = 1; break;
    default: bad_message("unknown message type"); break;
  }
}

// Bit `relid` was set in the event flags: that channel has packets for us.
void vmbus_on_event(uint32 relid) {
  struct vmbus_channel *ch = by_relid(relid);
  if (ch && ch->state == CH_OPENING) return;  // its first packets: read once it is open
  if (!ch || ch->state != CH_OPEN) {
    spurious_events++;
    return;
  }
  vmbus_drain(ch);
}

// ---- packets -----------------------------------------------------------------------------------

// The channel cannot go on (its ring is broken): it stops, the kernel does not.
static void channel_failed(struct vmbus_channel *ch, const char *why) {
  ch->state = CH_FAILED;
  ch->errors++;
  ch->error = why;
  kprintf("vmbus: channel %u (%s) failed: %s\n", ch->relid, ch->drv ? ch->drv->name : "?", why);
}

// A packet the driver cannot use: counted, dropped, the channel goes on.
void vmbus_bad_packet(struct vmbus_channel *ch, const char *why) {
  ch->errors++;
  ch->error = why;
}

// HvCallSignalEvent, a fast hypercall: the connection id from the offer and
// flag number 0 travel in RDX.
static void signal_host(struct vmbus_channel *ch) {
  if (hypercall(HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST, ch->connection_id, 0) != HV_STATUS_SUCCESS)
    vmbus_bad_packet(ch, "HvCallSignalEvent refused");
}

// Send one packet: descriptor, then `extra` (e.g. the page ranges of a
// GPA-direct packet; a multiple of 8 bytes), then the payload. Returns 0, or
// RING_FULL (try again later) or -4 (channel not open / packet too big).
int vmbus_send(struct vmbus_channel *ch, uint16 type, uint16 flags, uint64 trans_id, const void *extra,
               uint32 extra_len, const void *payload, uint32 len) {
  if (!ch || ch->state != CH_OPEN) return -4;
  uint32 total = sizeof(struct vmpacket_descriptor) + extra_len + len;
  if (total > ch->out.size / 2) return -4;
  struct vmpacket_descriptor d = {
      .type = type,
      .offset8 = (uint16)((sizeof(d) + extra_len) / 8),
      .len8 = (uint16)((total + 7) / 8),
      .flags = flags,
      .trans_id = trans_id,
  };
  struct kvec v[3] = {{&d, sizeof(d)}, {extra, extra_len}, {payload, len}};
  int r = ring_write(&ch->out, v, 3);
  if (r == 1) signal_host(ch);
  if (r == RING_CORRUPT) channel_failed(ch, ring_error());
  return r < 0 ? r : 0;
}

// Read and hand to the driver every packet in the channel's inbound ring.
// While we drain, interrupt_mask tells the host it need not signal; after
// unmasking we look again, since what arrived meanwhile came without one.
void vmbus_drain(struct vmbus_channel *ch) {
  static uint8 pkt[2048];  // the largest packet we accept: a 1 KiB console packet fits
  static int draining;     // handlers never drain again from inside a handler
  if (!ch || ch->state != CH_OPEN || !ch->drv || draining) return;
  draining = 1;
  uint32 free_before = ring_free(&ch->in);
  ring_mask(&ch->in);
  for (;;) {
    if (ch->drv->can_receive && !ch->drv->can_receive(ch)) break;  // the driver pulls the rest later
    int n = ring_read(&ch->in, pkt, sizeof(pkt));
    if (n == RING_EMPTY) {
      if (!ring_unmask(&ch->in)) break;
      ring_mask(&ch->in);
      continue;
    }
    if (n == RING_TOOBIG) {
      vmbus_bad_packet(ch, ring_error());
      continue;
    }
    if (n < 0) {
      channel_failed(ch, ring_error());
      break;
    }
    const struct vmpacket_descriptor *d = (const void *)pkt;
    ch->drv->on_packet(ch, d, pkt + d->offset8 * 8, (uint32)n - d->offset8 * 8);
    if (ch->state != CH_OPEN) break;
  }
  ch->in.hdr->interrupt_mask = 0;  // whatever happened, the host may signal us again
  if (ch->state == CH_OPEN && ring_read_wakes_writer(&ch->in, free_before)) signal_host(ch);
  draining = 0;
}

// ---- bringing the bus up ----------------------------------------------------------------------

static int fail(const char *why) {
  off_reason = why;
  state = VMBUS_FAILED;
  synic_disable();
  kprintf("vmbus: %s; using the emulated UART and IDE\n", why);
  return -1;
}

static int connect(void) {
  struct msg_initiate_contact m = {.h = {CHANNELMSG_INITIATE_CONTACT, 0},
                                   .vmbus_version_requested = VERSION_WIN10};
  state = VMBUS_CONTACTING;
  uint64 st = post(&m, sizeof(m));
  if (st != HV_STATUS_SUCCESS) return fail("the hypervisor refused INITIATE_CONTACT");
  if (vmbus_wait(&contact_done, NULL, CONTACT_MS) < 0) return fail("no answer to INITIATE_CONTACT within 1 s");
  if (!version_ok) return fail("the host does not speak VMBus 4.0");
  state = VMBUS_CONNECTED;
  return 0;
}

static void request_offers(void) {
  struct msg_header m = {CHANNELMSG_REQUESTOFFERS, 0};
  if (post(&m, sizeof(m)) != HV_STATUS_SUCCESS || vmbus_wait(&offers_done, NULL, REPLY_MS) < 0)
    kprintf("vmbus: the host did not finish its offers; going on with %d\n", nchannels);
}

// Give the host the ring pages (one GPADL), then open the channel on them.
static const char *open_channel(struct vmbus_channel *ch) {
  if (rings_used == RING_SETS) return "no ring pages left";
  uint8 *pages = ring_pool[rings_used++];
  ring_init(&ch->out, pages, VMBUS_RING_DATA_PAGES);
  ring_init(&ch->in, pages + (1 + VMBUS_RING_DATA_PAGES) * PGSIZE, VMBUS_RING_DATA_PAGES);
  ch->state = CH_OPENING;
  ch->gpadl = next_gpadl++;

  struct msg_gpadl_header g = {.h = {CHANNELMSG_GPADL_HEADER, 0}, .child_relid = ch->relid, .gpadl = ch->gpadl};
  g.range_buflen = 8 + sizeof(g.pfn);
  g.rangecount = 1;
  g.byte_count = VMBUS_RING_PAGES * PGSIZE;
  g.byte_offset = 0;
  for (int i = 0; i < VMBUS_RING_PAGES; i++) g.pfn[i] = ((uint64)pages >> 12) + i;  // identity map: GPA = address
  if (post(&g, sizeof(g)) != HV_STATUS_SUCCESS) return "GPADL_HEADER refused";
  if (vmbus_wait(&ch->gpadl_done, NULL, REPLY_MS) < 0) {
    host_silent = 1;
    return "no GPADL_CREATED";
  }
  if (ch->gpadl_status) return "the host refused the GPADL";

  struct msg_open_channel o = {.h = {CHANNELMSG_OPENCHANNEL, 0}, .child_relid = ch->relid, .openid = ch->relid};
  o.ringbuffer_gpadlhandle = ch->gpadl;
  o.downstream_ringbuffer_pageoffset = 1 + VMBUS_RING_DATA_PAGES;
  if (post(&o, sizeof(o)) != HV_STATUS_SUCCESS) return "OPENCHANNEL refused";
  if (vmbus_wait(&ch->open_done, NULL, REPLY_MS) < 0) {
    host_silent = 1;
    return "no OPENCHANNEL_RESULT";
  }
  if (ch->open_status) return "the host refused to open it";
  ch->state = CH_OPEN;
  return NULL;
}

static void open_channels(void) {
  for (int i = 0; i < nchannels; i++) {
    struct vmbus_channel *ch = &channels[i];
    if (!ch->drv) continue;  // a device we have no driver for stays offered
    const char *err = host_silent ? "not opened: the host stopped answering" : open_channel(ch);
    if (err) {
      ch->state = CH_FAILED;
      ch->errors++;
      ch->error = err;
      kprintf("vmbus: channel %u (%s): %s\n", ch->relid, ch->drv->name, err);
    }
  }
  int open = 0;
  for (int i = 0; i < nchannels; i++) open += channels[i].state == CH_OPEN;
  kprintf("vmbus: connected (VMBus 4.0), %d offers, %d channels open\n", nchannels, open);
  // Drivers start only now: the console driver moves kernel output onto its channel.
  for (int i = 0; i < nchannels; i++)
    if (channels[i].state == CH_OPEN && channels[i].drv->on_open) channels[i].drv->on_open(&channels[i]);
  // The host may have written its first packets (a heartbeat, the time) before
  // OPENCHANNEL_RESULT reached us; their signal found the channel not yet open.
  for (int i = 0; i < nchannels; i++) vmbus_drain(&channels[i]);
}

// Enlightened boot: used only when Integration Services are installed
// (bootinfo) and the hypervisor speaks the Hyper-V interface (CPUID "Hv#1").
int vmbus_init(void) {
  if (!(bootinfo->flags & BOOTINFO_IC)) return -1;  // an unenlightened kernel: emulated devices only
  if (!hv_present() || !hv_interface_hv1()) return fail("Integration Services installed, but no Hyper-V interface");
  uint64 st = synic_init();
  if (st == HV_STATUS_INVALID_HYPERCALL_CODE) return fail("this hypervisor has no SynIC");
  if (st != HV_STATUS_SUCCESS) return fail("the hypervisor refused the SynIC setup");
  if (connect() < 0) return -1;
  request_offers();
  open_channels();
  return 0;
}

// The kernel is up: from now on waiting means sleeping in HLT.
void vmbus_boot_done(void) { sleep_ok = state == VMBUS_CONNECTED; }

int vmbus_connected(void) { return state == VMBUS_CONNECTED; }

struct vmbus_channel *vmbus_channel(const struct vmbus_driver *drv) {
  for (int i = 0; i < nchannels; i++)
    if (channels[i].drv == drv) return &channels[i];
  return NULL;
}

// Clean shutdown: tell the host we are leaving. It answers UNLOAD_RESPONSE;
// we give it a moment (spinning: the next step is halting for good anyway).
void vmbus_unload(void) {
  if (state != VMBUS_CONNECTED) return;
  struct msg_header m = {CHANNELMSG_UNLOAD, 0};
  sleep_ok = 0;
  if (post(&m, sizeof(m)) == HV_STATUS_SUCCESS) vmbus_wait(&unload_done, NULL, 500);
  for (int i = 0; i < nchannels; i++)
    if (channels[i].state == CH_OPEN) channels[i].state = CH_CLOSED;
  synic_disable();
  state = VMBUS_UNLOADED;
}

// ---- the `vmbus` command -------------------------------------------------------------------------

static const char *state_name(enum chstate s) {
  static const char *names[] = {"offered", "opening", "open", "failed", "closed"};
  return names[s];
}

int vmbus_list(char *buf, int n) {
  int len;
  if (hv_is_root())
    return snprintf_u(buf, n, "VMBus: this is the root partition, the host side: its VSPs serve the children\n");
  if (state != VMBUS_CONNECTED) {
    const char *what = state == VMBUS_UNLOADED ? "unloaded" : "not in use";
    return snprintf_u(buf, n, "VMBus %s: %s; console on the UART, disk on IDE\n", what, off_reason);
  }
  len = snprintf_u(buf, n, "VMBus 4.0 connected: SynIC SINT%d -> vector 0x%x, %lu interrupts, %lu messages\n",
                   VMBUS_SINT, VMBUS_VECTOR, synic_interrupts(), messages);
  len += snprintf_u(buf + len, n - len, "%5s %-9s %-7s %7s %9s %8s %9s %7s %10s\n", "RELID", "DEVICE", "STATE",
                    "PKTS IN", "BYTES IN", "PKTS OUT", "BYTES OUT", "SIGNALS", "SUPPRESSED");
  for (int i = 0; i < nchannels; i++) {
    struct vmbus_channel *ch = &channels[i];
    len += snprintf_u(buf + len, n - len, "%5u %-9s %-7s %7lu %9lu %8lu %9lu %7lu %10lu\n", ch->relid,
                      ch->drv ? ch->drv->name : "unknown", state_name(ch->state), ch->in.packets, ch->in.bytes,
                      ch->out.packets, ch->out.bytes, ch->out.signals_sent + ch->in.signals_sent,
                      ch->out.signals_suppressed);
  }
  for (int i = 0; i < nchannels; i++)
    if (channels[i].errors || channels[i].error)
      len += snprintf_u(buf + len, n - len, "relid %u: %lu errors, last: %s\n", channels[i].relid,
                        channels[i].errors, channels[i].error ? channels[i].error : "?");
  if (bad_messages)
    len += snprintf_u(buf + len, n - len, "%lu bad messages from the host, last: %s\n", bad_messages,
                      bad_message_reason);
  if (spurious_events) len += snprintf_u(buf + len, n - len, "%lu events for no open channel\n", spurious_events);
  return len;
}
