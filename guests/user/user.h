// What user programs can call: system calls (usys.S) and a tiny libc (ulib.c).
#pragma once
#include "../types.h"
#include "../fs.h"

// System calls
void exit(int status) __attribute__((noreturn));
long write(const char *buf, long n);
long read(char *buf, long n);
long getpid(void);
long spawn(const char *name, const char *arg);
long ps(char *buf, long n);
long uptime_us(void);
long hvinfo(char *buf, long n);
long vmlist(char *buf, long n);
long vmstate(const char *name, long state);
long crash(long kind);
long tsckhz(void);
long uname(char *buf, long n);
long iobench(long n);
// Files in the root directory of the disk's FAT16 volume; errors are -E_* (fs.h).
long readdir(long slot, struct dirent *d);  // next slot, 0 at the end
long readfile(const char *name, long offset, char *buf, long n);  // bytes read, 0 at the end
long writefile(const char *name, const char *buf, long n);  // create or replace
long unlink(const char *name);
long diskbench(long write, long sectors);  // raw I/O on LBA 1..sectors; TSC ticks taken
long vmbus(char *buf, long n);  // the VMBus channels and their counters, as text
long walltime(void);  // seconds since 1970-01-01 UTC (synced by the host), -1 if not synced
uint64 vpclock(void);  // TSC ticks, not counting the time this partition's VP was kept from running

// readline.c: the shell's line editor
#define LINE_MAX 1024  // a line's bytes, the terminating NUL included
// Read a line with editing, history and Tab completion of `words` (NULL-terminated) into buf
// (cap bytes); returns its length, or -1 when more was typed than fits (buf holds what fit).
int readline(const char *prompt, char *buf, int cap, const char *const *words);

// ulib.c
void printf(const char *fmt, ...);
void puts(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, long n);
long strlen(const char *s);
long atol(const char *s);
int isdigits(const char *s);
void *memset(void *dst, int c, unsigned long n);
void *memcpy(void *dst, const void *src, unsigned long n);
void *memmove(void *dst, const void *src, unsigned long n);
uint64 rdtsc(void);
