// storvsc: the storage VSC, the synthetic SCSI disk on VMBus (docs/vmbus.md
// §5; Linux drivers/scsi/storvsc_drv.c).
//
// A request is one packet: a SCSI CDB (READ(10) / WRITE(10)) in a vstor
// packet, plus the list of guest pages that hold the data. The host's VSP
// copies the data straight to or from those pages and answers with one
// completion packet. Compare ide.c: there, every 2 bytes of data is a port
// access and so an intercept; here a 64 KiB request costs at most one
// signal each way -- and none while the host is still busy with the ring.
#include "bootinfo.h"
#include "defs.h"
#include "disk.h"
#include "fs.h"
#include "mmu.h"
#include "vmbus.h"
#include "x86.h"

#define VSTOR_OPERATION_COMPLETE_IO 1
#define VSTOR_OPERATION_EXECUTE_SRB 3
#define VSTOR_OPERATION_BEGIN_INITIALIZATION 7
#define VSTOR_OPERATION_END_INITIALIZATION 8
#define VSTOR_OPERATION_QUERY_PROTOCOL_VERSION 9
#define VSTOR_OPERATION_QUERY_PROPERTIES 10
#define REQUEST_COMPLETION_FLAG 1
#define VMSTOR_PROTO_VERSION_WIN8 0x0602  // major 6, minor 2

#define SRB_STATUS_SUCCESS 1
#define SCSI_READ_10 0x28
#define SCSI_WRITE_10 0x2a

#define MAX_SECTORS 128  // per request: 64 KiB
#define MAX_PFNS (MAX_SECTORS * SECTOR_SIZE / PGSIZE + 1)  // + 1: a buffer need not start on a page
#define IO_TIMEOUT_MS 10000

// The SCSI request block: the pre-Windows-8 layout, 36 bytes (the CDB shares
// a 20-byte area with the sense data the host may return).
struct vmscsi_request {
  uint16 length;
  uint8 srb_status;
  uint8 scsi_status;
  uint8 port_number, path_id, target_id, lun;
  uint8 cdb_length;
  uint8 sense_info_length;
  uint8 data_in;  // 1: the host writes our pages (a read)
  uint8 reserved;
  uint32 data_transfer_length;
  uint8 cdb[20];
} __attribute__((packed));

struct vstor_packet {
  uint32 operation;
  uint32 flags;
  uint32 status;
  union {
    struct vmscsi_request srb;  // EXECUTE_SRB
    uint16 version;             // QUERY_PROTOCOL_VERSION: major_minor
    uint64 sector_count;        // QUERY_PROPERTIES completion (hyperlab)
  } __attribute__((packed));
} __attribute__((packed));
_Static_assert(sizeof(struct vmscsi_request) == 36 && sizeof(struct vstor_packet) == 48, "vstor layout");

// What precedes the vstor packet in a GPA-direct packet (after the descriptor):
// one gpa_range naming the data buffer's pages.
struct gpa_direct {
  uint32 reserved;
  uint32 range_count;
  uint32 byte_count;
  uint32 byte_offset;  // where the data starts in the first page
  uint64 pfn[MAX_PFNS];
} __attribute__((packed));

static struct vmbus_channel *chan;

// Requests in flight: like Linux's storvsc we do not wait for one before
// sending the next, so the host finds several in the ring -- one signal for
// all of them, and one back for all their completions.
#define MAX_IN_FLIGHT 16
struct inflight {
  uint64 id;  // trans_id; 0: a free slot
  int done;
  struct vstor_packet reply;
};
static struct inflight slots[MAX_IN_FLIGHT];
static uint64 next_id = 1;
static int outstanding;
static volatile int all_done;

int storvsc_busy(void) { return outstanding != 0; }

// A completion: the reply to one request in flight (anything else is the host's error).
static void on_packet(struct vmbus_channel *ch, const struct vmpacket_descriptor *d, const uint8 *payload,
                      uint32 len) {
  if (d->type != VM_PKT_COMP) return vmbus_bad_packet(ch, "storage packet that is not a completion");
  struct inflight *s = NULL;
  for (int i = 0; i < MAX_IN_FLIGHT; i++)
    if (slots[i].id && slots[i].id == d->trans_id && !slots[i].done) s = &slots[i];
  if (!s) return vmbus_bad_packet(ch, "completion for no request in flight");
  if (len < 12) return vmbus_bad_packet(ch, "completion shorter than a vstor packet header");
  memset(&s->reply, 0, sizeof(s->reply));
  memcpy(&s->reply, payload, len < sizeof(s->reply) ? len : sizeof(s->reply));
  s->done = 1;
  if (--outstanding == 0) all_done = 1;
}

// Put one request in the ring; returns its slot, or NULL if no slot or no room is left.
static struct inflight *submit(struct vstor_packet *pkt, uint16 type, const void *extra, uint32 extra_len) {
  struct inflight *s = NULL;
  for (int i = 0; i < MAX_IN_FLIGHT && !s; i++)
    if (!slots[i].id) s = &slots[i];
  if (!s) return NULL;
  pkt->flags = REQUEST_COMPLETION_FLAG;
  s->id = next_id++;
  s->done = 0;
  if (vmbus_send(chan, type, VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED, s->id, extra, extra_len, pkt,
                 sizeof(*pkt)) < 0) {
    s->id = 0;
    return NULL;
  }
  outstanding++;
  all_done = 0;
  return s;
}

// Wait for every request in flight. On a timeout the slots are given up:
// a completion that comes later is counted as the host's error.
static const char *wait_all(void) {
  if (!outstanding) return NULL;
  if (vmbus_wait(&all_done, chan, IO_TIMEOUT_MS) == 0) return NULL;
  for (int i = 0; i < MAX_IN_FLIGHT; i++) slots[i].id = 0;
  outstanding = 0;
  return chan->state == CH_OPEN ? "no completion from the host" : "the channel failed";
}

static const char *check(struct inflight *s) {
  const char *err = NULL;
  if (s->reply.operation != VSTOR_OPERATION_COMPLETE_IO || s->reply.status != 0) err = "the host refused the request";
  s->id = 0;
  return err;
}

static const char *control(uint32 operation, struct vstor_packet *reply) {
  struct vstor_packet pkt = {.operation = operation};
  if (operation == VSTOR_OPERATION_QUERY_PROTOCOL_VERSION) pkt.version = VMSTOR_PROTO_VERSION_WIN8;
  struct inflight *s = submit(&pkt, VM_PKT_DATA_INBAND, NULL, 0);
  if (!s) return "cannot send to the host";
  const char *err = wait_all();
  if (err) return err;
  if (reply) *reply = s->reply;
  return check(s);
}

// The storvsc handshake: begin, agree on the protocol, learn the disk's size, end.
static const char *init(uint64 *sectors) {
  const char *err;
  struct vstor_packet props;
  if ((err = control(VSTOR_OPERATION_BEGIN_INITIALIZATION, NULL))) return err;
  if ((err = control(VSTOR_OPERATION_QUERY_PROTOCOL_VERSION, NULL))) return err;
  if ((err = control(VSTOR_OPERATION_QUERY_PROPERTIES, &props))) return err;
  *sectors = props.sector_count;
  if (*sectors == 0) return "the host has no disk behind this channel";
  if (*sectors > 0xffffffffUL) return "the host reports a disk size READ(10) cannot address";
  return control(VSTOR_OPERATION_END_INITIALIZATION, NULL);
}

// Send one READ(10) or WRITE(10) of n <= 128 sectors, the data in buf's pages.
static struct inflight *submit_rw(int write, uint64 lba, uint32 n, uint64 buf) {
  static struct gpa_direct range;  // copied into the ring by vmbus_send: reusable at once
  uint32 bytes = n * SECTOR_SIZE;
  range.reserved = 0;
  range.range_count = 1;
  range.byte_count = bytes;
  range.byte_offset = buf & (PGSIZE - 1);
  uint32 npfn = (range.byte_offset + bytes + PGSIZE - 1) / PGSIZE;
  for (uint32 i = 0; i < npfn; i++) range.pfn[i] = (buf >> 12) + i;  // identity map: GPA = address

  struct vstor_packet pkt = {.operation = VSTOR_OPERATION_EXECUTE_SRB};
  struct vmscsi_request *srb = &pkt.srb;
  srb->length = sizeof(*srb);
  srb->cdb_length = 10;
  srb->data_in = !write;
  srb->data_transfer_length = bytes;
  srb->cdb[0] = write ? SCSI_WRITE_10 : SCSI_READ_10;
  for (int i = 0; i < 4; i++) srb->cdb[2 + i] = (uint8)(lba >> (24 - 8 * i));  // big-endian, as SCSI is
  srb->cdb[7] = (uint8)(n >> 8);
  srb->cdb[8] = (uint8)n;
  return submit(&pkt, VM_PKT_DATA_USING_GPA_DIRECT, &range, 16 + 8 * npfn);
}

static int report(int write, uint64 lba, uint32 n, const char *err, struct inflight *s) {
  kprintf("storvsc: %s of %u sectors at LBA %lu: %s (SRB status %u, SCSI status %u)\n",
          write ? "WRITE(10)" : "READ(10)", n, lba, err, s ? s->reply.srb.srb_status : 0,
          s ? s->reply.srb.scsi_status : 0);
  return -E_IO;
}

// Split into requests of at most 128 sectors, send as many as fit, then
// collect their completions; repeat until done.
static int rw(int write, uint64 lba, uint32 n, uint64 buf) {
  if (buf < PGSIZE || buf + (uint64)n * SECTOR_SIZE > bootinfo->mem_bytes) {
    kprintf("storvsc: buffer %p is not in the kernel's identity-mapped RAM\n", buf);
    return -E_IO;
  }
  while (n) {
    struct inflight *sent[MAX_IN_FLIGHT];
    uint64 at[MAX_IN_FLIGHT];
    uint32 cnt[MAX_IN_FLIGHT];
    int k = 0;
    while (n && k < MAX_IN_FLIGHT) {
      uint32 c = n > MAX_SECTORS ? MAX_SECTORS : n;
      if (!(sent[k] = submit_rw(write, lba, c, buf))) break;  // no room: collect first
      at[k] = lba;
      cnt[k++] = c;
      lba += c;
      n -= c;
      buf += (uint64)c * SECTOR_SIZE;
    }
    if (k == 0) return report(write, lba, n, "cannot send to the host", NULL);
    const char *err = wait_all();
    if (err) return report(write, at[0], cnt[0], err, NULL);
    int r = 0;
    for (int i = 0; i < k; i++) {
      err = sent[i]->reply.srb.srb_status == SRB_STATUS_SUCCESS ? NULL : "the disk reported an error";
      const char *refused = check(sent[i]);
      if (refused && !err) err = refused;
      if (err && r == 0) r = report(write, at[i], cnt[i], err, sent[i]);
    }
    if (r < 0) return r;
  }
  return 0;
}

static int storvsc_read(uint64 lba, uint32 n, void *buf) { return rw(0, lba, n, (uint64)buf); }
static int storvsc_write(uint64 lba, uint32 n, const void *buf) { return rw(1, lba, n, (uint64)buf); }

// The host completes a WRITE(10) only once the data is in the disk file, so
// there is no cache of ours to flush.
static int storvsc_flush(void) { return 0; }

static struct disk_ops ops = {
    .driver = "storvsc",
    .model = "Msft Virtual Disk",  // what a Hyper-V synthetic disk calls itself
    .read = storvsc_read,
    .write = storvsc_write,
    .flush = storvsc_flush,
};

// disk.c asks us first: the synthetic disk, if its channel is open and the
// handshake works.
const struct disk_ops *storvsc_probe(void) {
  chan = vmbus_channel(&storvsc_driver);
  if (!chan || chan->state != CH_OPEN) return NULL;
  const char *err = init(&ops.sectors);
  if (err) {
    kprintf("storvsc: %s; not using the synthetic disk\n", err);
    return NULL;
  }
  return &ops;
}

const struct vmbus_driver storvsc_driver = {
    .name = "storage",
    .if_type = GUID(0xba6163d9, 0x04a1, 0x4d29, 0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f),
    .on_packet = on_packet,
};
