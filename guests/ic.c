// Integration services: heartbeat, shutdown and time sync, each on its own
// VMBus channel (docs/vmbus.md §7; Linux drivers/hv/hv_util.c).
//
// The host sends a request in an inband packet and asks for a completion;
// we answer with an inband packet carrying the same trans_id and the same
// message, flagged as a response. Every message starts with a pipe header
// and an IC message header; the body depends on the service.
#include "defs.h"
#include "fs.h"
#include "vmbus.h"
#include "x86.h"

struct vmbuspipe_hdr {
  uint32 flags;
  uint32 msgsize;
} __attribute__((packed));

struct icmsg_hdr {
  uint16 icverframe_major, icverframe_minor;
  uint16 icmsgtype;
  uint16 icvermsg_major, icvermsg_minor;
  uint16 icmsgsize;
  uint32 status;
  uint8 ictransaction_id;
  uint8 icflags;
  uint8 reserved[2];
} __attribute__((packed));
_Static_assert(sizeof(struct icmsg_hdr) == 20, "icmsg_hdr layout");

#define ICMSGTYPE_NEGOTIATE 0
#define ICMSGTYPE_HEARTBEAT 1
#define ICMSGTYPE_SHUTDOWN 3
#define ICMSGTYPE_TIMESYNC 4
#define ICMSGHDRFLAG_TRANSACTION 1
#define ICMSGHDRFLAG_REQUEST 2
#define ICMSGHDRFLAG_RESPONSE 4

#define IC_HEADERS (sizeof(struct vmbuspipe_hdr) + sizeof(struct icmsg_hdr))  // 28 bytes
#define IC_MAX 512  // the largest IC message we answer

struct heartbeat_msg {
  uint64 seq_num;
  uint32 reserved[8];
} __attribute__((packed));

struct shutdown_msg {
  uint32 reason_code;
  uint32 timeout_seconds;
  uint32 flags;  // 0 shut down, 2 reboot, | 1 forced
  uint8 display_message[64];
} __attribute__((packed));

struct timesync_msg {
  uint64 parenttime;  // the host's clock: 100 ns units since 1601-01-01 (Windows FILETIME)
  uint64 childtime;
  uint64 roundtriptime;
  uint8 flags;
} __attribute__((packed));

#define ICTIMESYNCFLAG_SYNC 1
#define ICTIMESYNCFLAG_SAMPLE 2
#define FILETIME_UNIX_EPOCH 116444736000000000UL  // 1970-01-01 in 100 ns units since 1601

static uint64 heartbeats, last_seq;
static int clock_synced;
static uint64 clock_base;  // FILETIME when uptime was 0
static volatile int shutdown_pending;
static uint32 shutdown_flags;
static char shutdown_text[65];

// Answer the request in msg (len bytes): same message, flagged as a response.
static void reply(struct vmbus_channel *ch, const struct vmpacket_descriptor *d, uint8 *msg, uint32 len) {
  struct icmsg_hdr *ic = (struct icmsg_hdr *)(msg + sizeof(struct vmbuspipe_hdr));
  ic->status = 0;
  ic->icflags = ICMSGHDRFLAG_TRANSACTION | ICMSGHDRFLAG_RESPONSE;
  if (vmbus_send(ch, VM_PKT_DATA_INBAND, 0, d->trans_id, NULL, 0, msg, len) < 0)
    vmbus_bad_packet(ch, "no room in the ring for the reply");
}

static void heartbeat(uint8 *body) {
  struct heartbeat_msg *hb = (struct heartbeat_msg *)body;
  last_seq = hb->seq_num;
  hb->seq_num++;  // "still alive": the host checks we incremented it
  heartbeats++;
}

static void shutdown_request(uint8 *body) {
  struct shutdown_msg *s = (struct shutdown_msg *)body;
  shutdown_flags = s->flags;
  int j = 0;
  for (int i = 0; i < 64 && s->display_message[i]; i++)
    if (s->display_message[i] >= ' ' && s->display_message[i] < 0x7f) shutdown_text[j++] = s->display_message[i];
  shutdown_text[j] = 0;
  shutdown_pending = 1;  // done at a safe point (ic_idle), not in the middle of an interrupt
}

static int timesync(uint8 *body) {
  struct timesync_msg *t = (struct timesync_msg *)body;
  if (!(t->flags & (ICTIMESYNCFLAG_SYNC | ICTIMESYNCFLAG_SAMPLE))) return 0;  // a probe: nothing to set
  if (t->parenttime < FILETIME_UNIX_EPOCH) return -1;
  clock_base = t->parenttime - uptime_us() * 10;
  clock_synced = 1;
  return 0;
}

// One request on any of the three channels. `need` is the body size the
// service's message must have; the host's lengths are checked, not trusted.
static void on_packet(struct vmbus_channel *ch, const struct vmpacket_descriptor *d, const uint8 *payload,
                      uint32 len) {
  static uint8 msg[IC_MAX];
  if (d->type != VM_PKT_DATA_INBAND) return vmbus_bad_packet(ch, "IC packet that is not inband");
  if (len < IC_HEADERS || len > IC_MAX) return vmbus_bad_packet(ch, "IC message of impossible size");
  memcpy(msg, payload, len);
  struct icmsg_hdr *ic = (struct icmsg_hdr *)(msg + sizeof(struct vmbuspipe_hdr));
  uint8 *body = msg + IC_HEADERS;
  uint32 have = len - IC_HEADERS;
  switch (ic->icmsgtype) {
    case ICMSGTYPE_NEGOTIATE:
      break;  // hyperlab fixes the versions: echoing the offer accepts it
    case ICMSGTYPE_HEARTBEAT:
      if (ch->drv != &heartbeat_driver || have < sizeof(struct heartbeat_msg))
        return vmbus_bad_packet(ch, "bad heartbeat message");
      heartbeat(body);
      break;
    case ICMSGTYPE_SHUTDOWN:
      if (ch->drv != &shutdown_driver || have < 12) return vmbus_bad_packet(ch, "bad shutdown message");
      if (have < sizeof(struct shutdown_msg)) memset(body + have, 0, sizeof(struct shutdown_msg) - have);
      shutdown_request(body);
      break;
    case ICMSGTYPE_TIMESYNC:
      if (ch->drv != &timesync_driver || have < sizeof(struct timesync_msg) || timesync(body) < 0)
        return vmbus_bad_packet(ch, "bad time sync message");
      break;
    default:
      return vmbus_bad_packet(ch, "unknown IC message type");
  }
  reply(ch, d, msg, len);
}

// The host asked us to shut down: say so, make the disk durable, leave
// VMBus, and halt with interrupts off. The host then turns the partition off.
static void shut_down(void) {
  kprintf("\nkernel: the host asks for a %s over VMBus%s%s\n", (shutdown_flags & 2) ? "restart" : "shutdown",
          shutdown_text[0] ? ": " : "", shutdown_text);
  int r = disk_flush();
  if (r == 0)
    kprintf("kernel: disk flushed\n");
  else if (r != -E_NODISK)
    kprintf("kernel: disk flush failed (error %d)\n", -r);
  kprintf("kernel: unloading VMBus; this partition is halted\n");
  vconsole_sync(1000);  // let the host show all of this before we say goodbye
  vmbus_unload();
  for (;;) __asm__ volatile("cli; hlt");
}

// A safe point: the kernel is idle waiting for input, or an interrupt came
// from user mode. No disk request is half done, so a shutdown can run here.
void ic_idle(void) {
  if (shutdown_pending && !storvsc_busy()) shut_down();
}

// Wall-clock seconds since 1970-01-01 UTC, or -1 before the host synced us.
int64 ic_unix_time(void) {
  if (!clock_synced) return -1;
  return (int64)((clock_base + uptime_us() * 10 - FILETIME_UNIX_EPOCH) / 10000000);
}

int ic_heartbeats(void) { return (int)heartbeats; }

const struct vmbus_driver heartbeat_driver = {
    .name = "heartbeat",
    .if_type = GUID(0x57164f39, 0x9115, 0x4e78, 0xab, 0x55, 0x38, 0x2f, 0x3b, 0xd5, 0x42, 0x2d),
    .on_packet = on_packet,
};

const struct vmbus_driver shutdown_driver = {
    .name = "shutdown",
    .if_type = GUID(0x0e0b6031, 0x5213, 0x4934, 0x81, 0x8b, 0x38, 0xd9, 0x0c, 0xed, 0x39, 0xdb),
    .on_packet = on_packet,
};

const struct vmbus_driver timesync_driver = {
    .name = "timesync",
    .if_type = GUID(0x9527e630, 0xd0ae, 0x497b, 0xad, 0xce, 0xe8, 0x0a, 0xb0, 0x17, 0x5c, 0xaf),
    .on_packet = on_packet,
};
