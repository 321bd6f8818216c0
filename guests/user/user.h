// What user programs can call: system calls (usys.S) and a tiny libc (ulib.c).
#pragma once
#include "../types.h"

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
uint64 rdtsc(void);
