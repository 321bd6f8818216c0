// What the disk and file system calls exchange with user programs: error
// numbers (returned negated) and one directory entry. Shared by the kernel
// and user programs, like syscall.h.
#pragma once
#include "types.h"

#define E_NODISK 2    // no disk attached (no IDE drive answered IDENTIFY)
#define E_IO 3        // the disk reported an error or stopped answering
#define E_NOFS 4      // no FAT16 partition in the disk's MBR
#define E_CORRUPT 5   // the file system is damaged (bad BPB, broken cluster chain, ...)
#define E_NOENT 6     // no such file
#define E_BADNAME 7   // not an 8.3 name
#define E_NOSPC 8     // no free clusters left
#define E_DIRFULL 9   // no free slot left in the root directory
#define E_ISDIR 10    // a directory or volume label, not a file
#define E_RANGE 11    // too many bytes or sectors asked for

#define FS_MAX_WRITE 4096   // largest file `writefile` creates in one call
#define DD_MAX_SECTORS 2047  // the scratch area: LBA 1..2047, between the MBR and the partition

struct dirent {
  char name[13];  // "NAME.EXT", NUL-terminated
  uint8 attr;     // FAT attribute bits: 0x10 directory, 0x01 read-only, ...
  uint32 size;    // bytes
  uint16 date;    // FAT format: (year-1980)<<9 | month<<5 | day
  uint16 time;    // FAT format: hour<<11 | minute<<5 | second/2
};
