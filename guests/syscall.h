// System-call numbers, shared by the kernel and user programs.
#pragma once
#define SYS_exit 1
#define SYS_write 2
#define SYS_read 3
#define SYS_getpid 4
#define SYS_spawn 5
#define SYS_ps 6
#define SYS_uptime 7
#define SYS_hvinfo 8
#define SYS_vmlist 9
#define SYS_vmstate 10
#define SYS_crash 11
#define SYS_tsckhz 12
#define SYS_uname 13
#define SYS_iobench 14
#define SYS_readdir 15
#define SYS_readfile 16
#define SYS_writefile 17
#define SYS_unlink 18
#define SYS_diskbench 19
#define SYS_vmbus 20
#define SYS_walltime 21
#define SYS_vpclock 22
