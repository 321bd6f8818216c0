// A FAT16 file system on an MBR-partitioned disk: the root directory only,
// 8.3 names. The layout is the one DOS and Windows use, so a disk written
// here opens in mtools, fsck.fat and Windows with the files in it.
//
//   LBA 0                      MBR: partition table at byte 446, 0x55AA at 510
//   LBA 1 .. part-1            unused (dd's scratch area)
//   part                       boot sector with the BPB (BIOS parameter block)
//   part + reserved            FAT #1, then FAT #2: one 16-bit entry per cluster
//   after the FATs             root directory: 32-byte entries
//   after the root directory   data clusters, numbered from 2
//
// A FAT entry says what follows its cluster: 0 free, 2.. the next cluster of
// the file, 0xFFF8.. end of the file. Everything read from the disk is checked
// before it is used: a damaged disk gives -E_CORRUPT, never a kernel fault.
// Sector buffers are static (kernel stacks are one page); the kernel runs one
// system call at a time with interrupts off, so nothing else touches them.
#include "defs.h"
#include "disk.h"
#include "fs.h"

#define ATTR_READONLY 0x01
#define ATTR_VOLUME 0x08
#define ATTR_DIR 0x10
#define ATTR_ARCHIVE 0x20
#define ATTR_LFN 0x0f     // a long-file-name piece (read-only|hidden|system|volume)
#define SLOT_FREE 0xe5    // name[0] of a deleted entry
#define SLOT_END 0x00     // name[0] of the first never-used entry: nothing follows
#define FAT_EOC 0xfff8    // entries >= this end a chain
#define FAT_EOC_MARK 0xffff
#define NONE 0xffffffffu

struct fat_dirent {  // a root directory entry, exactly as on the disk
  uint8 name[11];    // "README  TXT": base and extension padded with spaces
  uint8 attr;
  uint8 ntres, crt_tenth;
  uint16 crt_time, crt_date, acc_date;
  uint16 cluster_hi;  // FAT32 only: 0 on FAT16
  uint16 wrt_time, wrt_date;
  uint16 cluster;     // first cluster, 0 for an empty file
  uint32 size;
} __attribute__((packed));

// The mounted volume, in absolute sectors.
static struct {
  int mounted;
  uint32 spc;           // sectors per cluster
  uint32 nfats;
  uint64 fat_lba;       // first FAT
  uint32 fat_sectors;   // size of one FAT
  uint64 root_lba;
  uint32 root_entries;
  uint64 data_lba;      // cluster 2
  uint32 nclusters;     // clusters 2 .. nclusters+1 exist
  uint32 next_free;     // where the search for a free cluster starts
} vol;

static uint8 sec[SECTOR_SIZE];     // MBR, boot sector, file data
static uint8 fatsec[SECTOR_SIZE];  // one sector of the FAT ...
static uint32 fatsec_no = NONE;    // ... which one (within the FAT)
static int fatsec_dirty;           // changed since read: write to every FAT copy
static uint8 dirsec[SECTOR_SIZE];  // one sector of the root directory ...
static uint32 dirsec_no = NONE;    // ... which one (within the directory)

static uint32 get16(const uint8 *p) { return p[0] | p[1] << 8; }
static uint32 get32(const uint8 *p) { return get16(p) | get16(p + 2) << 16; }

static int corrupt(const char *why, uint64 value) {
  kprintf("fat: %s (%lu)\n", why, value);
  return -E_CORRUPT;
}

// --- mounting --------------------------------------------------------------------

static int is_fat16_type(uint8 type) { return type == 0x04 || type == 0x06 || type == 0x0e; }

// The MBR's partition table: the first FAT16 partition, or an error.
static int find_partition(uint64 *start, uint64 *size) {
  int r = disk_read(0, 1, sec);
  if (r < 0) return r;
  if (sec[510] != 0x55 || sec[511] != 0xaa) return -E_NOFS;
  for (int i = 0; i < 4; i++) {
    const uint8 *e = sec + 446 + 16 * i;  // status, CHS start, type, CHS end, LBA start, sectors
    if (!is_fat16_type(e[4])) continue;
    *start = get32(e + 8);
    *size = get32(e + 12);
    if (*start == 0 || *size == 0 || *start + *size > disk_sectors())
      return corrupt("partition does not fit on the disk: start", *start);
    return 0;
  }
  return -E_NOFS;
}

// Read the BPB (BIOS parameter block) and check every field we rely on.
static int read_bpb(uint64 part, uint64 part_size) {
  int r = disk_read(part, 1, sec);
  if (r < 0) return r;
  uint32 bps = get16(sec + 11), spc = sec[13], reserved = get16(sec + 14), nfats = sec[16];
  uint32 root_entries = get16(sec + 17), fatsz = get16(sec + 22);
  uint64 total = get16(sec + 19) ? get16(sec + 19) : get32(sec + 32);
  if (sec[510] != 0x55 || sec[511] != 0xaa) return corrupt("boot sector has no 0x55AA signature", 0);
  if (bps != SECTOR_SIZE) return corrupt("bytes per sector is not 512", bps);
  if (spc == 0 || (spc & (spc - 1)) || spc > 128) return corrupt("bad sectors per cluster", spc);
  if (reserved == 0) return corrupt("no reserved sectors", 0);
  if (nfats < 1 || nfats > 2) return corrupt("bad number of FATs", nfats);
  if (root_entries == 0 || root_entries % 16) return corrupt("bad root directory size", root_entries);
  if (fatsz == 0) return corrupt("FAT size is 0", 0);
  if (total == 0 || total > part_size) return corrupt("volume size does not fit the partition", total);
  uint64 root_sectors = root_entries / 16;
  uint64 meta = reserved + (uint64)nfats * fatsz + root_sectors;
  if (meta >= total) return corrupt("no room for data", total);
  uint64 nclusters = (total - meta) / spc;
  // The cluster count alone decides the FAT type (Microsoft's FAT specification).
  if (nclusters < 4085 || nclusters > 65524) return corrupt("not FAT16: cluster count", nclusters);
  if ((uint64)fatsz * (SECTOR_SIZE / 2) < nclusters + 2) return corrupt("FAT too small for its clusters", fatsz);
  vol.spc = spc;
  vol.nfats = nfats;
  vol.fat_lba = part + reserved;
  vol.fat_sectors = fatsz;
  vol.root_lba = vol.fat_lba + (uint64)nfats * fatsz;
  vol.root_entries = root_entries;
  vol.data_lba = vol.root_lba + root_sectors;
  vol.nclusters = (uint32)nclusters;
  vol.next_free = 2;
  return 0;
}

// Done once per boot, at the first file operation.
static int mount(void) {
  if (vol.mounted) return 0;
  if (!disk_sectors()) return -E_NODISK;
  uint64 part, size;
  int r = find_partition(&part, &size);
  if (r == 0) r = read_bpb(part, size);
  if (r < 0) return r;
  fatsec_no = dirsec_no = NONE;
  fatsec_dirty = 0;
  vol.mounted = 1;
  return 0;
}

// dd may use the sectors between the MBR and the first partition.
int fat_scratch_sectors(void) {
  uint64 limit = DD_MAX_SECTORS;
  if (!disk_sectors()) return -E_NODISK;
  if (disk_sectors() - 1 < limit) limit = disk_sectors() - 1;
  int r = disk_read(0, 1, sec);
  if (r < 0) return r;
  if (sec[510] == 0x55 && sec[511] == 0xaa) {
    for (int i = 0; i < 4; i++) {
      const uint8 *e = sec + 446 + 16 * i;
      uint64 start = get32(e + 8);
      if (e[4] && start && start - 1 < limit) limit = start - 1;
    }
  }
  return (int)limit;
}

// --- the FAT ---------------------------------------------------------------------

static int valid_cluster(uint32 c) { return c >= 2 && c <= vol.nclusters + 1; }

// Write the cached FAT sector to every copy of the FAT: they must stay identical.
static int fat_flush(void) {
  if (!fatsec_dirty) return 0;
  for (uint32 i = 0; i < vol.nfats; i++) {
    int r = disk_write(vol.fat_lba + (uint64)i * vol.fat_sectors + fatsec_no, 1, fatsec);
    if (r < 0) return r;
  }
  fatsec_dirty = 0;
  return 0;
}

static int fat_load(uint32 index) {
  if (fatsec_no == index) return 0;
  int r = fat_flush();
  if (r < 0) return r;
  fatsec_no = NONE;
  r = disk_read(vol.fat_lba + index, 1, fatsec);
  if (r < 0) return r;
  fatsec_no = index;
  return 0;
}

// The FAT entry of cluster c (callers pass a valid cluster), or an error.
static int fat_get(uint32 c) {
  int r = fat_load(c / 256);  // 256 two-byte entries per sector
  return r < 0 ? r : (int)get16(fatsec + (c % 256) * 2);
}

static int fat_set(uint32 c, uint32 value) {
  int r = fat_load(c / 256);
  if (r < 0) return r;
  fatsec[(c % 256) * 2] = (uint8)value;
  fatsec[(c % 256) * 2 + 1] = (uint8)(value >> 8);
  fatsec_dirty = 1;
  return 0;
}

// The cluster after c in its chain: 0 at the end, or an error.
static int fat_next(uint32 c) {
  int v = fat_get(c);
  if (v < 0) return v;
  if (v >= FAT_EOC) return 0;
  if (!valid_cluster(v)) return corrupt("broken cluster chain: bad FAT entry for cluster", c);
  return v;
}

// A file's chain must hold exactly the clusters its size needs, then end --
// what fsck.fat checks. A chain that loops never ends, so this catches it too.
static int check_chain(uint32 first, uint32 size) {
  uint32 cbytes = vol.spc * SECTOR_SIZE, need = (uint32)(((uint64)size + cbytes - 1) / cbytes);
  if (need > vol.nclusters) return corrupt("file larger than the volume", size);
  if (need == 0) return 0;
  if (!valid_cluster(first)) return corrupt("file starts at a bad cluster", first);
  int c = (int)first;
  for (uint32 i = 1; i < need; i++) {
    c = fat_next(c);
    if (c <= 0) return c < 0 ? c : corrupt("cluster chain shorter than the file, from cluster", first);
  }
  c = fat_next(c);
  if (c != 0) return c < 0 ? c : corrupt("cluster chain longer than the file or looping, from cluster", first);
  return 0;
}

// Mark every cluster of a chain free, up to its end or a broken link
// (-E_CORRUPT). A loop ends itself: a cluster freed earlier reads as 0.
static int free_chain(uint32 first) {
  for (uint32 c = first; c;) {
    if (!valid_cluster(c)) return -E_CORRUPT;
    int next = fat_get(c);
    if (next < 0) return next;
    int r = fat_set(c, 0);
    if (r < 0) return r;
    c = next >= FAT_EOC ? 0 : (uint32)next;
  }
  return 0;
}

// Put free cluster c at the end of the chain being built.
static int append(uint32 c, uint32 *first, uint32 *last) {
  int r = fat_set(c, FAT_EOC_MARK);
  if (r == 0 && *last) r = fat_set(*last, c);
  if (r < 0) return r;
  if (!*first) *first = c;
  *last = c;
  return 0;
}

// Allocate a chain of `need` clusters. If the disk has fewer free clusters,
// nothing is changed, *found says how many there are, and -E_NOSPC returns.
static int alloc_chain(uint32 need, uint32 *first, uint32 *found) {
  uint32 last = 0, got = 0, c = vol.next_free;
  int r = 0;
  *first = 0;
  for (uint32 seen = 0; got < need && seen < vol.nclusters && r >= 0; seen++) {
    r = fat_get(c);
    if (r == 0 && (r = append(c, first, &last)) == 0) got++;
    c = c == vol.nclusters + 1 ? 2 : c + 1;  // wrap around to the first data cluster
  }
  *found = got;
  if (r >= 0 && got < need) r = -E_NOSPC;
  if (r < 0) {
    free_chain(*first);
    *first = 0;
    return r;
  }
  vol.next_free = c;
  return 0;
}

// --- the root directory ----------------------------------------------------------

// Entry `slot` of the root directory, or NULL on a read error.
static struct fat_dirent *dir_get(uint32 slot) {
  uint32 index = slot / (SECTOR_SIZE / 32);
  if (dirsec_no != index) {
    dirsec_no = NONE;
    if (disk_read(vol.root_lba + index, 1, dirsec) < 0) return NULL;
    dirsec_no = index;
  }
  return (struct fat_dirent *)dirsec + slot % (SECTOR_SIZE / 32);
}

static int dir_put(void) { return disk_write(vol.root_lba + dirsec_no, 1, dirsec); }

static int valid_char(char c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return 1;
  for (const char *p = "!#$%&'()-@^_`{}~"; *p; p++)
    if (c == *p) return 1;
  return 0;
}

// "hello.txt" -> "HELLO   TXT", the 11 bytes an entry stores (always uppercase).
static int to_83(const char *name, uint8 out[11]) {
  uint32 pos = 0, len = 0, max = 8;
  memset(out, ' ', 11);
  for (; *name; name++) {
    char c = *name;
    if (c == '.') {
      if (max == 3 || len == 0) return -E_BADNAME;  // a second dot, or no base name
      pos = 8, len = 0, max = 3;
      continue;
    }
    if (len == max || !valid_char(c)) return -E_BADNAME;
    out[pos + len++] = (c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c;
  }
  if (out[0] == ' ' || (max == 3 && len == 0)) return -E_BADNAME;  // "" or "NAME."
  return 0;
}

static uint8 upper(uint8 c) { return (c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c; }

// Copy a space-padded field without its padding; bytes a terminal should not
// see (a damaged or hostile disk) become '?'.
static int copy_trimmed(const uint8 *src, int len, char *dst) {
  while (len > 0 && src[len - 1] == ' ') len--;
  for (int i = 0; i < len; i++) dst[i] = (src[i] < 0x20 || src[i] >= 0x7f) ? '?' : (char)src[i];
  return len;
}

// "README  TXT" -> "README.TXT"
static void from_83(const uint8 name[11], char *out) {
  int n = copy_trimmed(name, 8, out);
  int ext = copy_trimmed(name + 8, 3, out + n + 1);
  if (ext) out[n] = '.', n += 1 + ext;
  out[n] = 0;
}

// Other tools may store lowercase in a short name; we compare without case.
static int same_name(const uint8 a[11], const uint8 b[11]) {
  for (int i = 0; i < 11; i++)
    if (upper(a[i]) != upper(b[i])) return 0;
  return 1;
}

static int is_file_entry(const struct fat_dirent *e) {
  return e->name[0] != SLOT_END && e->name[0] != SLOT_FREE && e->attr != ATTR_LFN && !(e->attr & ATTR_VOLUME);
}

// The slot holding name83, or -E_NOENT; *free_slot gets the first unused slot (-1: none).
static int dir_find(const uint8 name83[11], int *free_slot) {
  *free_slot = -1;
  for (uint32 slot = 0; slot < vol.root_entries; slot++) {
    struct fat_dirent *e = dir_get(slot);
    if (!e) return -E_IO;
    if (e->name[0] == SLOT_END || e->name[0] == SLOT_FREE) {
      if (*free_slot < 0) *free_slot = (int)slot;
      if (e->name[0] == SLOT_END) break;  // never used: no entry follows
    } else if (is_file_entry(e) && same_name(e->name, name83)) {
      return (int)slot;
    }
  }
  return -E_NOENT;
}

// mount() and find a name; on success *slot is its entry.
static int lookup(const char *name, uint8 name83[11], int *slot, int *free_slot) {
  int r = mount();
  if (r == 0) r = to_83(name, name83);
  if (r < 0) return r;
  r = dir_find(name83, free_slot);
  if (r < 0) return r;
  *slot = r;
  return 0;
}

// Write times: the guest has no battery-backed clock, so the date is fixed
// (2025-01-01) and the time of day is the partition's uptime.
static void stamp(struct fat_dirent *e) {
  uint64 s = uptime_us() / 1000000;
  e->wrt_date = e->crt_date = e->acc_date = (2025 - 1980) << 9 | 1 << 5 | 1;
  e->wrt_time = e->crt_time = (uint16)((s / 3600 % 24) << 11 | (s / 60 % 60) << 5 | (s % 60) / 2);
  e->crt_tenth = 0;
}

// --- the operations system calls use ---------------------------------------------

// The first file entry at or after `slot`: fills *out and returns the slot
// to continue from, 0 at the end of the directory, or an error.
int fat_readdir(uint32 slot, struct dirent *out) {
  int r = mount();
  if (r < 0) return r;
  for (; slot < vol.root_entries; slot++) {
    struct fat_dirent *e = dir_get(slot);
    if (!e) return -E_IO;
    if (e->name[0] == SLOT_END) break;
    if (!is_file_entry(e)) continue;
    from_83(e->name, out->name);
    out->attr = e->attr;
    out->size = e->size;
    out->date = e->wrt_date;
    out->time = e->wrt_time;
    return (int)slot + 1;
  }
  return 0;
}

static uint64 cluster_lba(uint32 c) { return vol.data_lba + (uint64)(c - 2) * vol.spc; }

// Up to max bytes of a file from byte `offset`: returns how many (0 at its end).
int fat_read(const char *name, uint32 offset, void *buf, uint32 max) {
  uint8 name83[11];
  int slot, free_slot;
  int r = lookup(name, name83, &slot, &free_slot);
  if (r < 0) return r;
  struct fat_dirent *e = dir_get((uint32)slot);
  if (!e) return -E_IO;
  if (e->attr & ATTR_DIR) return -E_ISDIR;
  uint32 size = e->size, cbytes = vol.spc * SECTOR_SIZE;
  int c = e->cluster;
  if ((r = check_chain(c, size)) < 0) return r;
  if (offset >= size) return 0;
  for (uint32 skip = offset / cbytes; skip > 0; skip--) {  // find the cluster holding `offset`
    c = fat_next(c);
    if (c <= 0) return c < 0 ? c : corrupt("cluster chain shorter than the file", size);
  }
  uint32 n = size - offset < max ? size - offset : max;
  for (uint32 done = 0; done < n;) {
    uint32 in_cluster = offset % cbytes, in_sector = offset % SECTOR_SIZE;
    if ((r = disk_read(cluster_lba(c) + in_cluster / SECTOR_SIZE, 1, sec)) < 0) return r;
    uint32 k = SECTOR_SIZE - in_sector < n - done ? SECTOR_SIZE - in_sector : n - done;
    memcpy((uint8 *)buf + done, sec + in_sector, k);
    done += k, offset += k;
    if (done < n && offset % cbytes == 0) {
      c = fat_next(c);
      if (c <= 0) return c < 0 ? c : corrupt("cluster chain shorter than the file", size);
    }
  }
  return (int)n;
}

// Fill a freshly allocated chain with len bytes; the last sector is zero-padded.
static int write_data(uint32 first, const uint8 *data, uint32 len) {
  int c = (int)first;
  for (uint32 done = 0; done < len;) {
    for (uint32 s = 0; s < vol.spc && done < len; s++) {
      uint32 k = len - done < SECTOR_SIZE ? len - done : SECTOR_SIZE;
      memset(sec, 0, SECTOR_SIZE);
      memcpy(sec, data + done, k);
      int r = disk_write(cluster_lba(c) + s, 1, sec);
      if (r < 0) return r;
      done += k;
    }
    if (done < len && (c = fat_next(c)) <= 0) return c < 0 ? c : -E_CORRUPT;
  }
  return 0;
}

// New clusters for a file of len bytes. On a nearly full disk a file being
// replaced may give its own clusters up first -- but only if that is enough:
// a write that cannot succeed changes nothing.
static int alloc_for(uint32 len, uint32 *first, uint32 *old, uint32 old_size) {
  uint32 cbytes = vol.spc * SECTOR_SIZE, need = (len + cbytes - 1) / cbytes, found;
  int r = alloc_chain(need, first, &found);
  if (r != -E_NOSPC || !*old) return r;
  if ((r = check_chain(*old, old_size)) < 0) return r;
  if (found + (old_size + cbytes - 1) / cbytes < need) return -E_NOSPC;
  if ((r = free_chain(*old)) < 0) return r;
  *old = 0;
  return alloc_chain(need, first, &found);
}

// The file is gone either way; what its broken chain held stays allocated.
static void lost_clusters(const char *name) {
  kprintf("fat: %s had a damaged cluster chain; clusters it held may stay allocated (fsck.fat frees them)\n", name);
}

// Make the file `name` hold exactly data[0..len): create it or replace it.
// Order: data and FAT first, then the directory entry that points at them,
// then free the old clusters, so an interrupted write never cross-links files.
static int write_file(const char *name, const uint8 *data, uint32 len) {
  uint8 name83[11];
  int slot, free_slot;
  int r = lookup(name, name83, &slot, &free_slot);
  if (r == -E_NOENT) {
    if (free_slot < 0) return -E_DIRFULL;
    slot = -1;
  } else if (r < 0) {
    return r;
  }
  uint32 old = 0, old_size = 0, first;
  if (slot >= 0) {
    struct fat_dirent *e = dir_get((uint32)slot);
    if (!e) return -E_IO;
    if (e->attr & (ATTR_DIR | ATTR_VOLUME)) return -E_ISDIR;
    old = e->cluster;
    old_size = e->size;
  }
  if ((r = alloc_for(len, &first, &old, old_size)) < 0) return r;
  if ((r = write_data(first, data, len)) < 0 || (r = fat_flush()) < 0) {
    free_chain(first);  // give the new clusters back; the old file stays as it was
    return r;
  }
  struct fat_dirent *e = dir_get((uint32)(slot >= 0 ? slot : free_slot));
  if (!e) return -E_IO;
  if (slot < 0) {
    memset(e, 0, sizeof(*e));
    memcpy(e->name, name83, 11);
    e->attr = ATTR_ARCHIVE;
  }
  stamp(e);
  e->cluster_hi = 0;
  e->cluster = (uint16)first;
  e->size = len;
  if ((r = dir_put()) < 0) return r;
  if (free_chain(old) < 0) lost_clusters(name);
  return (int)len;
}

// After every change: both FAT copies and the drive's cache hit the disk.
static int commit(int r) {
  int f = fat_flush();
  if (f == 0) f = disk_flush();
  return r < 0 ? r : f < 0 ? f : r;
}

int fat_write(const char *name, const void *data, uint32 len) { return commit(write_file(name, data, len)); }

// Deleting marks the entry (and the long-name pieces Windows or mtools put
// before it) 0xE5, then frees its clusters.
static int remove_file(const char *name) {
  uint8 name83[11];
  int slot, free_slot;
  int r = lookup(name, name83, &slot, &free_slot);
  if (r < 0) return r;
  struct fat_dirent *e = dir_get((uint32)slot);
  if (!e) return -E_IO;
  if (e->attr & (ATTR_DIR | ATTR_VOLUME)) return -E_ISDIR;
  uint32 first = e->cluster;
  e->name[0] = SLOT_FREE;
  if ((r = dir_put()) < 0) return r;
  while (--slot >= 0) {
    if (!(e = dir_get((uint32)slot))) return -E_IO;
    if (e->attr != ATTR_LFN || e->name[0] == SLOT_FREE) break;
    e->name[0] = SLOT_FREE;
    if ((r = dir_put()) < 0) return r;
  }
  if (free_chain(first) < 0) lost_clusters(name);
  return 0;
}

int fat_remove(const char *name) { return commit(remove_file(name)); }
