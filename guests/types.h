// Fixed-width types for a freestanding kernel (no libc here).
#pragma once
typedef unsigned char uint8;
typedef unsigned short uint16;
typedef unsigned int uint32;
typedef unsigned long uint64;
typedef long int64;
typedef uint64 uintptr;
#define NULL ((void *)0)
