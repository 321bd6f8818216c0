// VMBus, the guest side: the SynIC, the channel bus, ring buffers and the
// drivers that sit on channels (docs/vmbus.md is the protocol). The names
// and layouts are Linux's (include/linux/hyperv.h, drivers/hv/*), so a
// student who reads one recognises the other.
#pragma once
#include "types.h"

#define VMBUS_SINT 2         // the synthetic interrupt source VMBus uses
#define VMBUS_VECTOR 0x30    // ... and the IDT vector we route it to
#define VMBUS_MESSAGE_CONNECTION_ID 1  // HvCallPostMessage target of channel messages
#define VMBUS_MAX_CHANNELS 8           // offers we keep (hyperlab makes 5)
#define VMBUS_MAX_RELID 2047           // event flags: 2048 bits per SINT

#define HV_STATUS_SUCCESS 0
#define HV_STATUS_INVALID_HYPERCALL_CODE 2
#define HV_STATUS_INSUFFICIENT_BUFFERS 0x13

// A GUID as Windows stores it: the first three fields little-endian, the rest byte by byte.
struct guid {
  uint8 b[16];
};
#define GUID(a, b, c, d0, d1, d2, d3, d4, d5, d6, d7)                                            \
  {{(a) & 0xff, ((a) >> 8) & 0xff, ((a) >> 16) & 0xff, ((a) >> 24) & 0xff, (b) & 0xff,           \
    ((b) >> 8) & 0xff, (c) & 0xff, ((c) >> 8) & 0xff, d0, d1, d2, d3, d4, d5, d6, d7}}

// ---- ring buffers (ring.c) -------------------------------------------------------------------

// The header page of one direction (struct hv_ring_buffer). The data area
// follows on the next page; indices are byte offsets into it.
struct hv_ring_buffer {
  volatile uint32 write_index;      // next byte the writer fills
  volatile uint32 read_index;       // next byte the reader takes; == write_index: empty
  volatile uint32 interrupt_mask;   // set by a reader that is draining: "no need to signal me"
  volatile uint32 pending_send_sz;  // a blocked writer: "signal me when this much is free"
  uint32 reserved1[12];
  volatile uint32 feature_bits;     // @64, bit 0: pending_send_sz is supported
};

#define VMBUS_RING_DATA_PAGES 8  // N in docs/vmbus.md §4: 32 KiB each way
#define VMBUS_RING_PAGES (2 * (1 + VMBUS_RING_DATA_PAGES))  // both rings, one GPADL

// Packet types (enum vmbus_packet_type) and the descriptor every packet starts with.
#define VM_PKT_DATA_INBAND 6
#define VM_PKT_DATA_USING_GPADL 8
#define VM_PKT_DATA_USING_GPA_DIRECT 9
#define VM_PKT_COMP 11
#define VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED 1

struct vmpacket_descriptor {
  uint16 type;
  uint16 offset8;  // where the payload starts, in 8-byte units from the packet start
  uint16 len8;     // whole packet, in 8-byte units
  uint16 flags;
  uint64 trans_id;  // the sender's request id; a completion carries it back
};

// One direction of a channel, as this side sees it, with its counters.
struct ring {
  struct hv_ring_buffer *hdr;
  uint8 *data;
  uint32 size;  // bytes in the data area
  uint64 packets, bytes;  // through this ring
  uint64 signals_sent, signals_suppressed;  // writes (and reads) that did / did not need a signal
};

// A piece of a packet being written: descriptor, extra header, payload.
struct kvec {
  const void *base;
  uint32 len;
};

#define RING_EMPTY 0
#define RING_FULL (-1)     // not enough room now: try again once the reader made some
#define RING_CORRUPT (-2)  // indices or a descriptor the other side wrote make no sense
#define RING_TOOBIG (-3)   // a packet larger than the reader's buffer (skipped)

void ring_init(struct ring *r, void *header_page, uint32 data_pages);
int ring_write(struct ring *r, const struct kvec *v, int n);
int ring_read(struct ring *r, void *buf, uint32 bufsize);
int ring_empty(struct ring *r);
uint32 ring_free(struct ring *r);
void ring_mask(struct ring *r);
int ring_unmask(struct ring *r);
int ring_read_wakes_writer(struct ring *r, uint32 free_before);
const char *ring_error(void);
extern volatile uint64 *stat_signals_suppressed;  // all channels; hv.c puts it in the lab's stats page

// ---- channels (vmbus.c) ----------------------------------------------------------------------

enum chstate { CH_OFFERED, CH_OPENING, CH_OPEN, CH_FAILED, CH_CLOSED };

struct vmbus_channel;

// A driver for one kind of offer (its interface type GUID).
struct vmbus_driver {
  const char *name;
  struct guid if_type;
  void (*on_open)(struct vmbus_channel *ch);  // optional
  // One packet from the host: descriptor, then the payload at offset8 * 8
  // (len bytes: len8 * 8 - offset8 * 8, so it may end in zero padding).
  void (*on_packet)(struct vmbus_channel *ch, const struct vmpacket_descriptor *d, const uint8 *payload,
                    uint32 len);
  int (*can_receive)(struct vmbus_channel *ch);  // optional: 0 = leave packets in the ring for now
};

struct vmbus_channel {
  uint32 relid;          // child_relid: names the channel in messages and in the event flags
  uint32 connection_id;  // what HvCallSignalEvent names to signal the host about this channel
  struct guid if_type;
  const struct vmbus_driver *drv;  // NULL: a device we have no driver for
  enum chstate state;
  uint32 gpadl;                    // our handle for the ring pages
  volatile int gpadl_done, open_done;  // set when GPADL_CREATED / OPENCHANNEL_RESULT arrive
  uint32 gpadl_status, open_status;
  struct ring out, in;  // guest -> host, host -> guest
  int draining;         // inside vmbus_drain for this channel (no nesting)
  uint64 errors;        // bad packets, refused sends
  const char *error;    // why the last one happened
};

int vmbus_init(void);
int vmbus_connected(void);
void vmbus_boot_done(void);
struct vmbus_channel *vmbus_channel(const struct vmbus_driver *drv);
int vmbus_send(struct vmbus_channel *ch, uint16 type, uint16 flags, uint64 trans_id, const void *extra,
               uint32 extra_len, const void *payload, uint32 len);
void vmbus_drain(struct vmbus_channel *ch);
int vmbus_wait(volatile int *done, struct vmbus_channel *ch, uint32 ms);
void vmbus_bad_packet(struct vmbus_channel *ch, const char *why);
void vmbus_on_message(const uint8 *msg, uint32 size);
void vmbus_on_event(uint32 relid);
void vmbus_unload(void);
int vmbus_list(char *buf, int n);

// ---- the SynIC (synic.c) -----------------------------------------------------------------------

int synic_init(void);
void synic_disable(void);
void synic_intr(void);
void synic_poll(void);
uint64 synic_interrupts(void);

// ---- drivers ------------------------------------------------------------------------------------

extern const struct vmbus_driver storvsc_driver;    // storvsc.c: the synthetic disk
extern const struct vmbus_driver vconsole_driver;   // vconsole.c: the synthetic console
extern const struct vmbus_driver heartbeat_driver;  // ic.c: integration services
extern const struct vmbus_driver shutdown_driver;
extern const struct vmbus_driver timesync_driver;

// vconsole.c
int vconsole_active(void);
void vconsole_putc(char c);
void vconsole_flush(void);
void vconsole_sync(uint32 ms);
void vconsole_pull(void);

// storvsc.c
int storvsc_busy(void);

// ic.c
void ic_idle(void);
int64 ic_unix_time(void);
int ic_heartbeats(void);

static inline void mb(void) { __asm__ volatile("mfence" ::: "memory"); }
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
