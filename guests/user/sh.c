// The shell: reads a line, runs a built-in command or spawns a program.
#include "user.h"

static char partition[16];

// Split "cmd rest" in place; returns rest (possibly "").
static char *split(char *s) {
  while (*s && *s != ' ') s++;
  if (!*s) return s;
  *s++ = 0;
  while (*s == ' ') s++;
  return s;
}

static void report_exit(const char *name, long status) {
  if (status == -1000) printf("%s: no such program\n", name);
  else if (status == -1001) printf("%s: out of memory\n", name);
  else if (status < 0 && status != -130) printf("%s: process was killed (status %d)\n", name, status);
}

static void print_uptime(char *args) {
  (void)args;
  long us = uptime_us();
  long s = us / 1000000;
  printf("up %ld:%02ld:%02ld.%03ld\n", s / 3600, (s / 60) % 60, s % 60, (us / 1000) % 1000);
}

// syscalls N: N getpid() calls, timed in up to BATCHES batches with the TSC.
// The figure is the median batch: a batch that another partition's time slice
// or the host interrupted is slow, and the median leaves it out; the slowest
// shows how slow. The total counts only the time this VP ran (vpclock).
#define BATCHES 100
static void syscalls(char *arg) {
  if (!isdigits(arg) || strlen(arg) > 9) {
    puts("usage: syscalls N   (N up to 999999999)\n");
    return;
  }
  long n = atol(arg), per = n > BATCHES * 10 ? (n + BATCHES - 1) / BATCHES : 10;
  uint64 khz = tsckhz(), ns[BATCHES];  // ns per call, one entry per batch
  int batches = 0;
  uint64 t0 = vpclock(), wall0 = rdtsc();  // the wall interval inside the VP's: no call counted in one only
  for (long done = 0; done < n; done += per) {
    long k = n - done < per ? n - done : per;
    uint64 b0 = rdtsc();
    for (long i = 0; i < k; i++) getpid();
    ns[batches++] = (rdtsc() - b0) * 1000000 / khz / k;
  }
  uint64 wall = rdtsc() - wall0, ticks = vpclock() - t0;
  if (!batches) {
    puts("0 system calls\n");
    return;
  }
  for (int i = 1; i < batches; i++)  // insertion sort: at most 100 numbers
    for (int j = i; j > 0 && ns[j - 1] > ns[j]; j--) {
      uint64 t = ns[j];
      ns[j] = ns[j - 1];
      ns[j - 1] = t;
    }
  printf("%ld system calls: %lu ns per call (user -> kernel -> user through the call gate)\n", n, ns[batches / 2]);
  printf("  median of %d batch%s of %ld; fastest %lu, slowest %lu ns per call; %lu us in all\n", batches,
         batches == 1 ? "" : "es", per < n ? per : n, ns[0], ns[batches - 1], ticks * 1000 / khz);
  uint64 away_us = wall > ticks ? (wall - ticks) * 1000 / khz : 0;
  if (away_us * 20 > ticks * 1000 / khz)  // more than 5 %: say where the rest of the time went
    printf("  (%lu us more passed while %s's VP was not running: other partitions' time slices)\n", away_us,
           partition);
}

static void io(char *arg) {
  if (!isdigits(arg)) {
    puts("usage: io N\n");
    return;
  }
  long n = atol(arg);
  uint64 ticks = (uint64)iobench(n);
  uint64 ns_total = ticks * 1000000 / (uint64)tsckhz();
  printf("%ld port reads in %lu us: %lu ns per access (guest -> hypervisor -> guest intercept)\n", n,
         ns_total / 1000, n ? ns_total / n : 0);
}

static const char *hv_error(long st) {
  switch (-st) {
    case 6: return "access denied (HV_STATUS_ACCESS_DENIED): only the root partition may manage partitions";
    case 7: return "not allowed in the partition's current state (HV_STATUS_INVALID_PARTITION_STATE)";
    case 13: return "no such partition (HV_STATUS_INVALID_PARTITION_ID)";
    case 2: return "no hypervisor to ask (HV_STATUS_INVALID_HYPERCALL_CODE)";
    default: return "hypercall failed";
  }
}

static void vm(char *args) {
  char *name = split(args);
  static char buf[1024];
  long st;
  if (strcmp(args, "list") == 0) {
    st = vmlist(buf, sizeof(buf));
    if (st >= 0) {
      puts(buf);
      return;
    }
  } else if ((strcmp(args, "start") == 0 || strcmp(args, "stop") == 0) && *name) {
    st = vmstate(name, strcmp(args, "start") == 0 ? 2 : 0);
    if (st == 0) {
      printf("vm: %s %s\n", name, strcmp(args, "start") == 0 ? "starting" : "turned off");
      return;
    }
  } else {
    puts("usage: vm list | vm start NAME | vm stop NAME\n");
    return;
  }
  printf("vm: %s\n", hv_error(st));
}

// Errors of the file and disk system calls (fs.h).
static const char *fs_error(long err) {
  switch (-err) {
    case E_NODISK: return "no disk";
    case E_IO: return "disk I/O error";
    case E_NOFS: return "no FAT16 file system on the disk";
    case E_CORRUPT: return "the file system on the disk is damaged";
    case E_NOENT: return "no such file";
    case E_BADNAME: return "not an 8.3 file name (up to 8 characters, optionally a dot and up to 3 more)";
    case E_NOSPC: return "disk full";
    case E_DIRFULL: return "root directory full";
    case E_ISDIR: return "not a file";
    case E_RANGE: return "too large";
    default: return "bad argument";
  }
}

static void ls(char *args) {
  (void)args;
  static struct dirent d;
  long slot = 0, files = 0, bytes = 0;
  while ((slot = readdir(slot, &d)) > 0) {
    const char *pad = "             " + strlen(d.name);  // names are at most 12 characters
    if (d.attr & 0x10) printf("%s%s   <DIR>", d.name, pad);
    else printf("%s%s%8u", d.name, pad, d.size);
    printf("  %04u-%02u-%02u %02u:%02u\n", 1980 + (d.date >> 9), (d.date >> 5) & 15, d.date & 31, d.time >> 11,
           (d.time >> 5) & 63);
    files++;
    bytes += d.size;
  }
  if (slot < 0) printf("ls: %s\n", fs_error(slot));
  else printf("%ld file%s, %ld bytes\n", files, files == 1 ? "" : "s", bytes);
}

static void cat(char *name) {
  static char buf[1024];
  long off = 0, n;
  char last = '\n';
  if (!*name) {
    puts("usage: cat NAME\n");
    return;
  }
  while ((n = readfile(name, off, buf, sizeof(buf))) > 0) {
    write(buf, n);
    off += n;
    last = buf[n - 1];
  }
  if (n < 0) printf("cat: %s: %s\n", name, fs_error(n));
  else if (last != '\n') puts("\n");  // keep the prompt on a line of its own
}

// write NAME TEXT: the file holds TEXT and a newline, as `echo TEXT > NAME` would.
static void writecmd(char *name) {
  char *text = split(name);
  if (!*name || !*text) {
    puts("usage: write NAME TEXT\n");
    return;
  }
  long len = strlen(text);
  text[len] = '\n';  // over the terminating NUL: the line buffer has that byte
  long r = writefile(name, text, len + 1);
  text[len] = 0;
  if (r < 0) printf("write: %s: %s\n", name, fs_error(r));
}

static void rm(char *name) {
  if (!*name) {
    puts("usage: rm NAME\n");
    return;
  }
  long r = unlink(name);
  if (r < 0) printf("rm: %s: %s\n", name, fs_error(r));
}

// dd write|read N: raw sectors, timed by the kernel with the TSC.
static void dd(char *args) {
  char *num = split(args);
  int wr = strcmp(args, "write") == 0;
  if ((!wr && strcmp(args, "read") != 0) || !isdigits(num) || strlen(num) > 9) {
    puts("usage: dd write N | dd read N   (N sectors of 512 bytes, 1..2047)\n");
    return;
  }
  long n = atol(num);
  long ticks = (n >= 1 && n <= DD_MAX_SECTORS) ? diskbench(wr, n) : -E_RANGE;
  if (ticks == -E_RANGE) {
    printf("dd: N must be 1..%d: the scratch area between the MBR and the partition\n", DD_MAX_SECTORS);
    return;
  }
  if (ticks < 0) {
    printf("dd: %s\n", fs_error(ticks));
    return;
  }
  uint64 us = (uint64)ticks * 1000 / (uint64)tsckhz();
  uint64 bytes = (uint64)n * 512;
  uint64 rate = bytes * 100 / (us ? us : 1);  // bytes per microsecond = MB/s; two decimals
  printf("dd: %s %ld sectors (%lu bytes) in %lu us: %lu.%02lu MB/s\n", wr ? "wrote" : "read", n, bytes, us,
         rate / 100, rate % 100);
}

// date: the wall clock the time sync integration service set, as UTC.
static void date(char *args) {
  (void)args;
  static const char *days[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};  // 1970-01-01 was a Thursday
  static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  long t = walltime();
  if (t < 0) {
    puts("date: clock not synced (the time sync integration service has not set it)\n");
    return;
  }
  long days_since = t / 86400, secs = t % 86400;
  // Civil date from days since 1970 (Howard Hinnant's algorithm): years start in March.
  long z = days_since + 719468, era = z / 146097, doe = z - era * 146097;
  long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  long day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
  long year = yoe + era * 400 + (month <= 2);
  printf("%s %s %2ld %02ld:%02ld:%02ld UTC %ld\n", days[days_since % 7], months[month - 1], day, secs / 3600,
         (secs / 60) % 60, secs % 60, year);
}

static void vmbuscmd(char *args) {
  (void)args;
  static char buf[1024];
  if (vmbus(buf, sizeof(buf)) >= 0) puts(buf);
}

static void echo(char *text) {
  puts(text);  // puts, not printf: a line may be longer than printf's buffer
  puts("\n");
}

static void ver(char *args) {
  (void)args;
  static char buf[512];
  printf("hyperlab kernel 0.1 (x86-64), user mode shell, pid %ld\n", getpid());
  if (hvinfo(buf, sizeof(buf)) >= 0) puts(buf);
}

static void clear(char *args) {
  (void)args;
  puts("\x1b[H\x1b[2J\x1b[3J");  // cursor home, erase the screen, erase the scrollback
}

static void program(const char *name, char *arg) { report_exit(name, spawn(name, arg)); }
static void ps_cmd(char *arg) { program("ps", arg); }
static void spin(char *arg) { program("spin", arg); }

static void crashcmd(char *arg) {
  char *kind = split(arg);
  if (strcmp(arg, "user") == 0) {
    report_exit("crash", spawn("crash", *kind ? kind : "null"));
  } else if (strcmp(arg, "kernel") == 0) {
    crash(1);
    puts("crash: the kernel survived?\n");
  } else {
    puts("usage: crash user [null|priv|io|div] | crash kernel\n");
  }
}

static void help(char *args);

// The commands: the one list `help` prints, Tab completes and run() looks up.
static const struct command {
  const char *name;
  void (*run)(char *args);  // args: the rest of the line after the name and its spaces
  const char *help;         // usage and what it does, one or more lines
} commands[] = {
    {"help", help, "help            this list; Tab completes a command, Up/Down recall earlier lines\n"},
    {"ver", ver, "ver             kernel version, partition role, hypervisor detected through CPUID\n"},
    {"ps", ps_cmd, "ps              list processes\n"},
    {"echo", echo, "echo TEXT       print TEXT\n"},
    {"clear", clear, "clear           clear the screen (Ctrl-L too)\n"},
    {"uptime", print_uptime, "uptime          time since this partition booted\n"},
    {"syscalls", syscalls, "syscalls N      make N system calls, print the time per call\n"},
    {"io", io, "io N            N port reads by the kernel, each one trapped by the hypervisor\n"},
    {"spin", spin, "spin N          compute loop of N million iterations, print the time (Ctrl-C stops it)\n"},
    {"crash", crashcmd,
     "crash user      fault in a user process: only that process dies\n"
     "                  (variants: crash user null|priv|io|div)\n"
     "crash kernel    fault in the kernel: this partition stops with a bugcheck\n"},
    {"ls", ls, "ls              list the files on this partition's disk (FAT16, root directory)\n"},
    {"cat", cat, "cat NAME        print a file\n"},
    {"write", writecmd, "write NAME TEXT create or replace the file NAME holding TEXT\n"},
    {"rm", rm, "rm NAME         delete a file\n"},
    {"dd", dd,
     "dd write N      write N raw sectors (1..2047, the disk's scratch area); print MB/s\n"
     "dd read N       read N raw sectors from the scratch area; print MB/s\n"},
    {"date", date, "date            the date and time (UTC), once the host synced the clock over VMBus\n"},
    {"vmbus", vmbuscmd, "vmbus           VMBus channels: packets, bytes, signals sent and suppressed\n"},
    {"vm", vm,
     "vm list         list child partitions          (root partition only)\n"
     "vm start NAME   start a child partition        (root partition only)\n"
     "vm stop NAME    turn a child partition off     (root partition only)\n"},
};
#define NCOMMANDS (int)(sizeof(commands) / sizeof(commands[0]))

static void help(char *args) {
  (void)args;
  puts("commands:\n");
  for (int i = 0; i < NCOMMANDS; i++) {
    for (const char *s = commands[i].help; *s;) {  // each line indented by two spaces
      const char *eol = s;
      while (*eol != '\n') eol++;
      puts("  ");
      write(s, eol - s + 1);
      s = eol + 1;
    }
  }
  puts("editing: Left/Right, Home/End, Backspace/Delete, Ctrl-U (to line start), Ctrl-K (to line end),\n"
       "         Ctrl-W (word), Ctrl-C (abandon the line)\n");
}

static void run(char *line) {
  char *arg = split(line);
  if (!*line) return;
  for (int i = 0; i < NCOMMANDS; i++)
    if (strcmp(line, commands[i].name) == 0) {
      commands[i].run(arg);
      return;
    }
  printf("%s: unknown command (try help)\n", line);
}

int main(const char *arg) {
  (void)arg;
  static char line[LINE_MAX], prompt[sizeof(partition) + 2];
  static const char *names[NCOMMANDS + 1];  // for Tab
  for (int i = 0; i < NCOMMANDS; i++) names[i] = commands[i].name;
  if (uname(partition, sizeof(partition)) < 0) memcpy(partition, "?", 2);
  memcpy(prompt, partition, strlen(partition));
  memcpy(prompt + strlen(partition), "$ ", 3);
  puts("type help for the list of commands\n");
  for (;;) {
    if (readline(prompt, line, sizeof(line), names) < 0) {
      printf("sh: line too long: the shell reads at most %d characters; nothing was run\n", LINE_MAX - 1);
      continue;
    }
    run(line);
  }
}
