// Processes. Each runs in ring 3 in its own address space. The model is
// run-to-completion: a parent that spawns a program waits while it runs,
// and the child's exit switches straight back to the parent.
#include "defs.h"
#include "mmu.h"
#include "proc.h"
#include "x86.h"

struct program {
  const char *name;
  const char *start, *end;
};
extern char _binary_sh_start[], _binary_sh_end[];
extern char _binary_spin_start[], _binary_spin_end[];
extern char _binary_crash_start[], _binary_crash_end[];
extern char _binary_ps_start[], _binary_ps_end[];
static const struct program programs[] = {
    {"sh", _binary_sh_start, _binary_sh_end},
    {"spin", _binary_spin_start, _binary_spin_end},
    {"crash", _binary_crash_start, _binary_crash_end},
    {"ps", _binary_ps_start, _binary_ps_end},
};

static struct proc ptable[NPROC];
static struct proc *current;
static int nextpid;
extern void trapret(void);
extern void swtch(struct context **old, struct context *new);

// Slot 0 is the kernel's own thread (kmain): the parent of the shell.
void proc_init(void) {
  struct proc *p = &ptable[0];
  p->state = RUNNING;
  p->pid = 0;
  strncpy_z(p->name, "kernel", sizeof(p->name));
  current = p;
  nextpid = 1;
}

struct proc *myproc(void) { return current; }

static const struct program *find_program(const char *name) {
  for (uint64 i = 0; i < sizeof(programs) / sizeof(programs[0]); i++)
    if (strcmp(programs[i].name, name) == 0) return &programs[i];
  return NULL;
}

static void release(struct proc *p) {
  if (p->pml4) uvm_free(p->pml4);
  if (p->kstack) kfree(p->kstack);
  memset(p, 0, sizeof(*p));
}

static void switch_to(struct proc *from, struct proc *to) {
  current = to;
  to->state = RUNNING;
  if (to->pml4) uvm_switch(to->pml4); else kvm_switch();
  if (to->kstack) tss_set_rsp0((uint64)to->kstack + PGSIZE);
  swtch(&from->context, to->context);
}

// Load the image into a fresh address space and build a kernel stack whose
// first "return" is an iretq into ring 3 at USER_BASE with rdi = arg.
static struct proc *create(const struct program *prog, const char *arg) {
  struct proc *p = NULL;
  for (int i = 1; i < NPROC; i++)
    if (ptable[i].state == UNUSED) { p = &ptable[i]; break; }
  if (!p) return NULL;
  p->state = RUNNABLE;  // claims the slot
  p->pml4 = uvm_create();
  p->kstack = kalloc();
  if (!p->pml4 || !p->kstack) goto fail;
  uint64 size = (uint64)(prog->end - prog->start);
  for (uint64 off = 0; off < size; off += PGSIZE) {
    char *page = kalloc();
    if (!page) goto fail;
    memcpy(page, prog->start + off, size - off < PGSIZE ? size - off : PGSIZE);
    if (uvm_map(p->pml4, USER_BASE + off, page, 1) < 0) { kfree(page); goto fail; }
  }
  char *stack_top_page = NULL;
  for (int i = 1; i <= USER_STACK_PAGES; i++) {
    char *page = kalloc();
    if (!page) goto fail;
    if (uvm_map(p->pml4, USER_TOP - i * PGSIZE, page, 1) < 0) { kfree(page); goto fail; }
    if (i == 1) stack_top_page = page;
  }
  // The argument string goes at the very top of the user stack.
  uint64 arglen = strlen(arg) + 1;
  if (arglen > 256) arglen = 256;
  char *argk = stack_top_page + PGSIZE - arglen;
  strncpy_z(argk, arg, arglen);
  uint64 argu = USER_TOP - arglen;

  struct trapframe *tf = (struct trapframe *)(p->kstack + PGSIZE - sizeof(*tf));
  memset(tf, 0, sizeof(*tf));
  tf->rip = USER_BASE;
  tf->cs = SEG_UCODE | USER_RPL;
  tf->rflags = 0x202;  // IF on
  tf->rsp = (argu & ~0xfUL) - 8;
  tf->ss = SEG_UDATA | USER_RPL;
  tf->rdi = argu;
  struct context *c = (struct context *)((char *)tf - sizeof(*c));
  memset(c, 0, sizeof(*c));
  c->rip = (uint64)trapret;
  p->context = c;
  p->pid = nextpid++;
  strncpy_z(p->name, prog->name, sizeof(p->name));
  p->start_us = uptime_us();
  return p;
fail:
  release(p);
  return NULL;
}

// Run a program and wait for it; returns its exit status (<0: killed or error).
int proc_spawn(const char *name, const char *arg) {
  const struct program *prog = find_program(name);
  if (!prog) return -1000;
  struct proc *parent = current;
  struct proc *child = create(prog, arg);
  if (!child) return -1001;
  child->parent = parent;
  parent->state = WAITING;
  switch_to(parent, child);
  // Back here once the child has exited.
  int status = child->exit_status;
  release(child);
  return status;
}

void proc_exit(int status) {
  struct proc *p = current;
  p->exit_status = status;
  p->state = ZOMBIE;
  switch_to(p, p->parent);
  for (;;) bugcheck(0xe2, 0, 0, 0, 0);  // a zombie was resumed: cannot happen
}

// A program other than the shell (pid 1) runs in the foreground.
int proc_foreground_program(void) { return current && current->pid > 1; }

// Ctrl-C: mark the program in the foreground; it dies on its way back to user mode.
void proc_interrupt_foreground(void) {
  if (proc_foreground_program()) current->killed = 1;
}

static const char *state_names[] = {"unused", "runnable", "running", "waiting", "zombie"};

int proc_list(char *buf, int n) {
  int len = 0;
  len += snprintf_u(buf + len, n - len, "PID  STATE     RUNTIME   NAME\n");
  for (int i = 0; i < NPROC; i++) {
    struct proc *p = &ptable[i];
    if (p->state == UNUSED) continue;
    len += snprintf_u(buf + len, n - len, "%3d  %-8s  %6lu ms  %s%s\n", p->pid, state_names[p->state],
                      (uptime_us() - p->start_us) / 1000, p->name, p->pid == 0 ? " (ring 0)" : "");
  }
  return len;
}

// kmain ends here: the kernel thread runs the shell, and restarts it should it die.
void proc_start_shell(void) {
  for (;;) {
    int status = proc_spawn("sh", "");
    kprintf("\nkernel: sh exited with status %d; starting a new one\n", status);
  }
}
