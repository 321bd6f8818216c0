// VMBus ring buffers: one per direction of a channel, in pages both sides
// share through the channel's GPADL (docs/vmbus.md §4; Linux
// drivers/hv/ring_buffer.c). The writer copies a packet and an 8-byte
// trailer into the data area -- wrapping around its end byte by byte --
// then publishes write_index; the reader copies the packet out and
// publishes read_index. read_index == write_index means empty, so a writer
// always leaves at least one byte free.
//
// The other side writes the indices we read, so every index and every
// descriptor is checked before use: a bad value makes that channel fail
// (RING_CORRUPT), never the kernel.
#include "defs.h"
#include "mmu.h"
#include "vmbus.h"

_Static_assert(__builtin_offsetof(struct hv_ring_buffer, feature_bits) == 64, "hv_ring_buffer layout");
_Static_assert(sizeof(struct vmpacket_descriptor) == 16, "vmpacket_descriptor layout");

static const char *why;  // what the last RING_CORRUPT / RING_TOOBIG was about
static uint64 suppressed_fallback;
volatile uint64 *stat_signals_suppressed = &suppressed_fallback;

const char *ring_error(void) { return why; }

static int corrupt(const char *reason) {
  why = reason;
  return RING_CORRUPT;
}

void ring_init(struct ring *r, void *header_page, uint32 data_pages) {
  memset(r, 0, sizeof(*r));
  r->hdr = header_page;
  r->data = (uint8 *)header_page + PGSIZE;
  r->size = data_pages * PGSIZE;
  memset(header_page, 0, PGSIZE);
  r->hdr->feature_bits = 1;  // we understand pending_send_sz
}

// Indices are byte offsets inside the data area, always multiples of 8
// (packets and trailers are).
static int index_ok(struct ring *r, uint32 i) { return i < r->size && (i & 7) == 0; }

static uint32 used(struct ring *r, uint32 w, uint32 rd) { return w >= rd ? w - rd : r->size - rd + w; }

int ring_empty(struct ring *r) { return r->hdr->read_index == r->hdr->write_index; }

uint32 ring_free(struct ring *r) {
  uint32 w = r->hdr->write_index, rd = r->hdr->read_index;
  if (!index_ok(r, w) || !index_ok(r, rd)) return 0;
  return r->size - used(r, w, rd);
}

// Copy into / out of the data area at off, wrapping at the end; returns the offset after.
static uint32 copy_in(struct ring *r, uint32 off, const void *src, uint32 n) {
  const uint8 *s = src;
  for (uint32 i = 0; i < n; i++) {
    r->data[off] = s[i];
    if (++off == r->size) off = 0;
  }
  return off;
}

static uint32 copy_out(struct ring *r, uint32 off, void *dst, uint32 n) {
  uint8 *d = dst;
  for (uint32 i = 0; i < n; i++) {
    d[i] = r->data[off];
    if (++off == r->size) off = 0;
  }
  return off;
}

// Write one packet made of the pieces v[0..n) (the first is its descriptor),
// padded to 8 bytes, then the trailer. Returns 1 if the reader must be
// signalled, 0 if not, or RING_FULL / RING_CORRUPT (nothing written).
//
// The signalling rule (hv_need_to_signal in Linux): signal only if the reader
// has not masked interrupts AND the ring was empty before this packet -- a
// reader that still has packets to read will find this one too. The counters
// assume the caller signals when told to.
int ring_write(struct ring *r, const struct kvec *v, int n) {
  static const uint8 zeros[8];
  uint32 w = r->hdr->write_index, rd = r->hdr->read_index;
  if (!index_ok(r, w) || !index_ok(r, rd)) return corrupt("ring index out of range");
  uint32 len = 0;
  for (int i = 0; i < n; i++) len += v[i].len;
  uint32 padded = (len + 7) & ~7U;
  if (r->size - used(r, w, rd) <= padded + 8) return RING_FULL;  // never fill it completely

  uint32 off = w;
  for (int i = 0; i < n; i++) off = copy_in(r, off, v[i].base, v[i].len);
  off = copy_in(r, off, zeros, padded - len);
  uint64 trailer = (uint64)w << 32;  // the previous write_index, as Windows and Linux write it
  off = copy_in(r, off, &trailer, 8);
  mb();  // the packet must be visible before the index that publishes it
  r->hdr->write_index = off;
  mb();  // ... and the index before we look at the reader's state
  r->packets++;
  r->bytes += padded;
  if (r->hdr->interrupt_mask == 0 && w == r->hdr->read_index) {
    r->signals_sent++;
    return 1;
  }
  r->signals_suppressed++;
  (*stat_signals_suppressed)++;
  return 0;
}

// Read the next packet into buf. Returns its length (len8 * 8 bytes,
// descriptor included), RING_EMPTY, RING_TOOBIG (the packet was skipped)
// or RING_CORRUPT (nothing consumed: the channel cannot go on).
int ring_read(struct ring *r, void *buf, uint32 bufsize) {
  uint32 w = r->hdr->write_index, rd = r->hdr->read_index;
  if (!index_ok(r, w)) return corrupt("host wrote a write_index outside the ring");
  if (!index_ok(r, rd)) return corrupt("read_index outside the ring");
  if (w == rd) return RING_EMPTY;
  mb();  // read the index before the data it covers
  uint32 avail = used(r, w, rd);
  struct vmpacket_descriptor d;
  if (avail < sizeof(d) + 8) return corrupt("host published less than a packet");
  copy_out(r, rd, &d, sizeof(d));
  uint32 len = (uint32)d.len8 * 8, start = (uint32)d.offset8 * 8;
  if (len < sizeof(d) || start < sizeof(d) || start > len) return corrupt("bad packet descriptor");
  if (len + 8 > avail) return corrupt("packet longer than what the host published");
  int result = (int)len;
  if (len > bufsize) {
    why = "packet larger than the driver accepts";
    result = RING_TOOBIG;
  } else {
    copy_out(r, rd, buf, len);
  }
  mb();  // done with the bytes before handing them back to the writer
  r->hdr->read_index = (rd + len + 8) % r->size;  // skip the trailer too
  r->packets++;
  r->bytes += len;
  return result;
}

// A reader about to drain sets interrupt_mask: the writer then need not
// signal for every packet it adds meanwhile (batching).
void ring_mask(struct ring *r) {
  r->hdr->interrupt_mask = 1;
  mb();
}

// Done draining: unmask, then look once more. A packet the writer added
// while we were masked came without a signal, so it is ours to read now.
// Returns 1 if the ring is not empty.
int ring_unmask(struct ring *r) {
  r->hdr->interrupt_mask = 0;
  mb();
  return !ring_empty(r);
}

// After reading: a writer waiting for room (pending_send_sz) is signalled
// once the free space crosses what it asked for (hv_signal_on_read).
int ring_read_wakes_writer(struct ring *r, uint32 free_before) {
  uint32 want = r->hdr->pending_send_sz;
  if (!want) return 0;
  if (free_before < want && ring_free(r) >= want) {
    r->signals_sent++;
    return 1;
  }
  return 0;
}
