"""A virtual processor (VP): one x86-64 CPU on Unicorn, plus what Unicorn leaves out.

Unicorn runs guest instructions, paging and ring 3 for real, but it never
delivers an exception or interrupt through the guest's IDT: it only calls a
hook. So the core plays that part of the CPU here, exactly: it reads the
IDT gate, switches to the TSS stack when entering ring 0 from ring 3, pushes
the frame (SS, RSP, RFLAGS, CS, RIP, error code), and jumps to the handler.

Two Unicorn 2.1.4 internals are patched through a saved CPU context, at
offsets that :func:`check_context_layout` verifies at start-up:

* the current privilege level (``hflags`` and the CS/SS segment caches),
  which ``reg_write`` cannot change;
* QEMU's ``old_exception``, which Unicorn never clears: without the fix the
  second fault a guest takes becomes a double fault and the third a triple.
"""

from __future__ import annotations

import ctypes
import enum
import struct
import threading
from dataclasses import dataclass
from typing import Protocol

from unicorn import UC_ARCH_X86, UC_HOOK_INSN, UC_HOOK_INSN_INVALID, UC_HOOK_INTR, UC_MODE_64, Uc, UcError
from unicorn import x86_const as X
from unicorn.unicorn_py3.unicorn import uclib

from .memory import GuestMemory

# --- Unicorn 2.1.4's saved context (QEMU CPUX86State) -------------------------------------------
CTX_SIZE = 5608
CTX_HFLAGS = 216          # uint32; bits 1:0 are the CPL
CTX_SEGS = 224            # SegmentCache[6] {u32 selector; u64 base; u32 limit; u32 flags}, 24 bytes each
CTX_SEG_SIZE = 24
SEG_CS, SEG_SS = 1, 2
CTX_ERROR_CODE = 5424     # int error_code
CTX_IS_INT = 5428         # int exception_is_int: 1 for `int n`
CTX_OLD_EXCEPTION = 5536  # int old_exception: -1 when no exception is in flight

_SEGFMT = "<I4xQII"

# Vectors whose frame carries an error code.
ERROR_CODE_VECTORS = frozenset({8, 10, 11, 12, 13, 14, 17})
# Faults that turn into a double fault when they happen while delivering another fault.
CONTRIBUTORY = frozenset({0, 10, 11, 12, 13})
FAULT_NAMES = {
    0: "divide", 1: "debug", 3: "breakpoint", 4: "overflow", 5: "bound", 6: "invalid_opcode",
    7: "device_not_available", 8: "double", 10: "invalid_tss", 11: "segment_not_present",
    12: "stack", 13: "general_protection", 14: "page", 16: "x87", 17: "alignment", 18: "machine_check",
    19: "simd",
}

RFLAGS_IF = 1 << 9
RFLAGS_TF = 1 << 8
RFLAGS_NT = 1 << 14
RFLAGS_RF = 1 << 16
RFLAGS_VM = 1 << 17
RFLAGS_AC = 1 << 18

VMCALL = b"\x0f\x01\xc1"
HLT = 0xF4
_UNTIL = 0xFFFF_FFFF_FFFF_F000  # never reached: slices end by emu_stop or hlt


class VpExit(enum.Enum):
    """Why :meth:`VirtualProcessor.run` returned."""

    HALTED = "halted"        # the guest executed HLT: sleep until an interrupt is pending
    PREEMPTED = "preempted"  # the time slice ended, or the hypervisor asked the VP to stop
    SHUTDOWN = "shutdown"    # triple fault or an unrecoverable emulator error: the partition is dead
    INTERCEPT = "intercept"  # waiting for another partition (the root's worker) to serve a port access


@dataclass(slots=True)
class _Pending:
    """An exception to deliver or a hypercall to complete once the VP has left emu_start."""

    vector: int = -1
    error: int | None = None
    software: bool = False
    restore: object | None = None  # CPU state to go back to first (a faulting or deferred IN/OUT)
    hypercall: bool = False
    io: tuple[int, int, int, bool] | None = None  # (port, size, value, is_in): served by another partition


class GuestShutdown(Exception):
    """The CPU would reset: a triple fault, or state the emulator cannot continue from."""


class Intercepts(Protocol):
    """What a VP asks of its partition when the guest does something the hypervisor must handle."""

    def io_in(self, port: int, size: int, cpl: int) -> int: ...
    def io_out(self, port: int, size: int, value: int, cpl: int) -> None: ...
    def io_deferred(self, port: int, size: int, value: int, is_in: bool) -> bool: ...
    def cpuid(self, leaf: int, subleaf: int) -> tuple[int, int, int, int] | None: ...
    def hypercall(self, vp: VirtualProcessor) -> int: ...
    def fault(self, vector: int, cpl: int) -> None: ...


def check_context_layout() -> None:
    """Refuse to run unless this Unicorn saves its CPU context with the layout the core patches."""
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(0, 0x10000)
    # mov $0x1234,%ax; mov %ax,%ds  -> #GP(0x1234), a selector beyond the (empty) GDT
    uc.mem_write(0x1000, bytes.fromhex("66b834128ed8f4"))
    seen: dict[str, object] = {}

    def on_intr(uc: Uc, intno: int, _: object) -> None:
        blob = bytes(uc.context_save())
        seen.update(
            intno=intno, size=len(blob),
            error=struct.unpack_from("<i", blob, CTX_ERROR_CODE)[0],
            old=struct.unpack_from("<i", blob, CTX_OLD_EXCEPTION)[0],
            cs=struct.unpack_from(_SEGFMT, blob, CTX_SEGS + SEG_CS * CTX_SEG_SIZE)[0],
            cpl=struct.unpack_from("<I", blob, CTX_HFLAGS)[0] & 3,
        )
        uc.reg_write(X.UC_X86_REG_RIP, 0x1006)

    uc.hook_add(UC_HOOK_INTR, on_intr)
    uc.emu_start(0x1000, 0x1007, count=10)
    expected = {"intno": 13, "size": CTX_SIZE, "error": 0x1234, "old": 13,
                "cs": uc.reg_read(X.UC_X86_REG_CS), "cpl": 0}
    if seen != expected:
        raise RuntimeError(
            f"this Unicorn saves CPU state differently than unicorn==2.1.4 (seen {seen}, "
            f"expected {expected}); the core cannot deliver exceptions exactly. Install unicorn==2.1.4."
        )


_CPUID_CACHE: dict[int, tuple[int, int, int, int]] = {}


def host_cpuid(leaf: int) -> tuple[int, int, int, int]:
    """What Unicorn's emulated CPU itself answers for a CPUID leaf (no hypervisor bits)."""
    if leaf not in _CPUID_CACHE:
        uc = Uc(UC_ARCH_X86, UC_MODE_64)
        uc.mem_map(0, 0x2000)
        uc.mem_write(0x1000, b"\x0f\xa2")
        uc.reg_write(X.UC_X86_REG_RAX, leaf)
        uc.reg_write(X.UC_X86_REG_RCX, 0)
        uc.emu_start(0x1000, 0x1002)
        _CPUID_CACHE[leaf] = tuple(  # type: ignore[assignment]
            uc.reg_read(r) & 0xFFFFFFFF for r in (X.UC_X86_REG_RAX, X.UC_X86_REG_RBX, X.UC_X86_REG_RCX,
                                                  X.UC_X86_REG_RDX))
    return _CPUID_CACHE[leaf]


def calibrate_tsc_khz(seconds: float = 0.02) -> int:
    """TSC ticks per millisecond: Unicorn's RDTSC reads the host's TSC."""
    import time

    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(0, 0x2000)
    uc.mem_write(0x1000, b"\x0f\x31")

    def tsc() -> tuple[int, float]:
        t = time.perf_counter()
        uc.emu_start(0x1000, 0x1002)
        return (uc.reg_read(X.UC_X86_REG_RDX) << 32) | (uc.reg_read(X.UC_X86_REG_RAX) & 0xFFFFFFFF), t

    c0, t0 = tsc()
    time.sleep(seconds)
    c1, t1 = tsc()
    return max(1, round((c1 - c0) / (t1 - t0) / 1000))


class VirtualProcessor:
    """One virtual processor of a partition. All methods but :meth:`stop` run on the scheduler thread."""

    def __init__(self, memory_bytes: int, intercepts: Intercepts) -> None:
        self.uc = Uc(UC_ARCH_X86, UC_MODE_64)
        self.memory = GuestMemory(self.uc, memory_bytes)
        self.intercepts = intercepts
        self._stop_requested = False
        self._stop_lock = threading.Lock()
        self._running = False  # inside emu_start
        self._in_run = False   # inside run(): a stop request is kept for its next emu_start
        self._pending: _Pending | None = None  # what a hook left for run() to finish
        self.yield_requested = False  # set by HvCallNotifyLongSpinWait: end this slice after the call
        self._shutdown_reason: str | None = None
        self._delivering: list[int] = []
        self._cs = ctypes.c_uint64()
        self._reg = ctypes.c_uint64()
        self._io_length: dict[int, int] = {}  # RIP of an IN/OUT -> its length (guest code is static)
        uc = self.uc
        # Run with Unicorn's exit list (empty) instead of an `until` address: for `until`,
        # every emu_start probes the page before it, a silent page fault that rewrites the
        # guest's CR2 (seen: CR2 = until - 1 inside the guest's own #PF handler).
        uc.ctl_exits_enabled(True)
        uc.ctl_set_exits([])
        uc.hook_add(UC_HOOK_INSN, self._on_in, None, 1, 0, X.UC_X86_INS_IN)
        uc.hook_add(UC_HOOK_INSN, self._on_out, None, 1, 0, X.UC_X86_INS_OUT)
        uc.hook_add(UC_HOOK_INSN, self._on_cpuid, None, 1, 0, X.UC_X86_INS_CPUID)
        uc.hook_add(UC_HOOK_INSN_INVALID, self._on_invalid)
        uc.hook_add(UC_HOOK_INTR, self._on_intr)

    # --- registers ------------------------------------------------------------------------------
    def reg(self, r: int) -> int:
        return self.uc.reg_read(r)

    def set_reg(self, r: int, value: int) -> None:
        self.uc.reg_write(r, value)

    def fast_reg(self, r: int) -> int:
        """reg_read straight through the C API (~0.7 us instead of ~3 us): for per-exit paths."""
        uclib.uc_reg_read(self.uc._uch, r, ctypes.byref(self._reg))
        return self._reg.value

    def fast_set_reg(self, r: int, value: int) -> None:
        self._reg.value = value & 0xFFFF_FFFF_FFFF_FFFF
        uclib.uc_reg_write(self.uc._uch, r, ctypes.byref(self._reg))

    @property
    def cpl(self) -> int:
        # Straight through the C API: the binding's generic reg_read costs ~3 us, too much per exit.
        uclib.uc_reg_read(self.uc._uch, X.UC_X86_REG_CS, ctypes.byref(self._cs))
        return self._cs.value & 3

    def _paging(self) -> tuple[int, int]:
        return self.uc.reg_read(X.UC_X86_REG_CR3), self.uc.reg_read(X.UC_X86_REG_CR0)

    def read_virt(self, va: int, n: int) -> bytes | None:
        return self.memory.read_virt(*self._paging(), va, n)

    # --- running --------------------------------------------------------------------------------
    def boot(self, entry: int, rdi: int, rsp: int) -> None:
        self.set_reg(X.UC_X86_REG_RIP, entry)
        self.set_reg(X.UC_X86_REG_RDI, rdi)
        self.set_reg(X.UC_X86_REG_RSP, rsp)
        self.set_reg(X.UC_X86_REG_RFLAGS, 0x2)

    def run(self) -> VpExit:
        """Run guest code until HLT, a stop request or a shutdown.

        Hooks never redirect the guest themselves: they note what must happen and stop the
        VP, and the core acts here, outside ``emu_start``. (Writing RIP or restoring a context
        inside an exception hook races with a concurrent ``emu_stop``: Unicorn then runs the
        same exception twice, pushing a second frame onto the guest's stack.)
        """
        with self._stop_lock:
            self._in_run = True
        try:
            return self._run()
        finally:
            with self._stop_lock:
                self._in_run = False
                self._stop_requested = False

    def _run(self) -> VpExit:
        if self._shutdown_reason:  # e.g. a triple fault while an interrupt was injected
            return VpExit.SHUTDOWN
        while True:
            with self._stop_lock:
                if self._stop_requested:  # asked while the core was busy between two emu_starts
                    self._stop_requested = False
                    return VpExit.PREEMPTED
                self._running = True
            try:
                self.uc.emu_start(self.fast_reg(X.UC_X86_REG_RIP), _UNTIL)
            except UcError as e:
                self._shutdown_reason = self._shutdown_reason or f"emulator stopped the VP: {e}"
            finally:
                with self._stop_lock:
                    self._running = False
                    stopped = self._stop_requested
                    self._stop_requested = False
            if self._shutdown_reason:
                return VpExit.SHUTDOWN
            pending, self._pending = self._pending, None
            if pending is not None and pending.io is not None:
                self.uc.context_restore(pending.restore)  # back to the IN/OUT, as if it had not run
                if not self.intercepts.io_deferred(*pending.io):
                    return VpExit.INTERCEPT  # waits until another partition serves it
                if stopped:
                    return VpExit.PREEMPTED
                continue
            if pending is not None:
                try:
                    self._complete(pending)
                except GuestShutdown as e:
                    self._shutdown_reason = str(e)
                    return VpExit.SHUTDOWN
                if self._shutdown_reason:
                    return VpExit.SHUTDOWN
                if stopped or self.yield_requested:
                    self.yield_requested = False
                    return VpExit.PREEMPTED
                continue
            if stopped:
                # A HLT that coincides with a stop request looks the same as a stop right after
                # an instruction ending in byte 0xF4 (e.g. `jne -12`). Taking it as a preemption
                # is the safe reading: the guest resumes after its HLT as if woken, which idle
                # loops tolerate; the other reading could put a busy VP to sleep for good.
                return VpExit.PREEMPTED
            if self._after_hlt():
                return VpExit.HALTED
            return VpExit.PREEMPTED

    def _complete(self, pending: _Pending) -> None:
        """Finish what a hook started: a hypercall, or delivering an exception."""
        if pending.restore is not None:
            self.uc.context_restore(pending.restore)  # undo what ran after the faulting IN/OUT
        if pending.hypercall:
            rip = self.uc.reg_read(X.UC_X86_REG_RIP)
            status = self.intercepts.hypercall(self)
            self.uc.reg_write(X.UC_X86_REG_RAX, status)
            self.uc.reg_write(X.UC_X86_REG_RIP, rip + len(VMCALL))
            return
        if not pending.software:
            self.intercepts.fault(pending.vector, self.cpl)
        self.deliver(pending.vector, pending.error, software=pending.software, clear_in_flight=True)

    def stop(self) -> None:
        """End the current time slice soon (any thread). Does nothing between slices: the
        scheduler serves its requests before it runs a VP again. Within a slice it is kept even
        while the core is busy between two emu_starts (a deferred intercept, a hypercall)."""
        with self._stop_lock:
            if self._in_run:
                self._stop_requested = True
            if self._running:
                self.uc.emu_stop()

    @property
    def shutdown_reason(self) -> str | None:
        return self._shutdown_reason

    def _after_hlt(self) -> bool:
        rip = self.uc.reg_read(X.UC_X86_REG_RIP)
        prev = self.read_virt(rip - 1, 1)
        return prev is not None and prev[0] == HLT and self.cpl == 0

    @property
    def interrupts_enabled(self) -> bool:
        return bool(self.uc.reg_read(X.UC_X86_REG_RFLAGS) & RFLAGS_IF)

    def inject_interrupt(self, vector: int) -> None:
        """Deliver an external interrupt now (the caller checked IF). Runs between slices."""
        rip = self.uc.reg_read(X.UC_X86_REG_RIP)
        nxt = self.read_virt(rip, 1)
        if nxt and nxt[0] == HLT and self.cpl == 0:
            # Interrupted just before `sti; hlt` reached the HLT: return past it, as a CPU
            # woken from that HLT would, so the guest re-checks its wait condition.
            self.uc.reg_write(X.UC_X86_REG_RIP, rip + 1)
        try:
            self.deliver(vector, None, external=True)
        except GuestShutdown as e:
            # The guest's IDT cannot take the interrupt (e.g. limit 0): a triple fault, reported by
            # the next run() like one raised inside guest code — never up into the scheduler.
            self._shutdown_reason = str(e)

    # --- hooks: the intercepts --------------------------------------------------------------------
    def _io_denied(self, cpl: int) -> bool:
        """Ring 3 may not touch ports (our TSS has no I/O bitmap and IOPL is 0): #GP(0).

        Unicorn does not check this, so the core does. The hook cannot redirect the guest
        precisely (the rest of the translation block still runs), so it saves the CPU state
        at the IN/OUT and stops the VP; :meth:`run` restores that state and delivers the #GP.
        """
        if cpl == 0:
            return False
        if self._pending is None:
            self._pending = _Pending(13, 0, restore=self.uc.context_save())
            self.uc.emu_stop()
        return True

    def defer_io(self, port: int, size: int, value: int, is_in: bool) -> int:
        """From an IN/OUT hook: stop here, exactly at the instruction, until :meth:`finish_io`.

        The hook cannot wait (the emulator is inside the instruction) and cannot stop precisely
        (the rest of the translation block would run with a placeholder value), so the CPU
        state at the instruction is saved now and restored when the VP leaves the emulator.
        """
        if self._pending is None:
            self._pending = _Pending(io=(port, size, value, is_in), restore=self.uc.context_save())
            self.uc.emu_stop()
        return 0

    def finish_io(self, size: int, is_in: bool, value: int) -> None:
        """Complete a deferred IN/OUT: the value lands in AL/AX/EAX, RIP moves past the instruction."""
        rip = self.fast_reg(X.UC_X86_REG_RIP)
        length = self._io_length.get(rip)
        if length is None:
            code = self.read_virt(rip, 3) or bytes(3)
            prefix = 1 if code[0] == 0x66 else 0  # operand-size prefix: a 16-bit access
            length = prefix + (2 if 0xE4 <= code[prefix] <= 0xE7 else 1)  # E4-E7 carry an immediate port
            self._io_length[rip] = length
        if is_in:
            rax = self.fast_reg(X.UC_X86_REG_RAX)
            if size == 4:
                rax = value & 0xFFFFFFFF  # a 32-bit write zero-extends
            else:
                mask = (1 << (8 * size)) - 1
                rax = (rax & ~mask) | (value & mask)
            self.fast_set_reg(X.UC_X86_REG_RAX, rax)
        self.fast_set_reg(X.UC_X86_REG_RIP, rip + length)

    def _on_in(self, uc: Uc, port: int, size: int, _: object) -> int:
        cpl = self.cpl
        if self._io_denied(cpl):
            return 0
        return self.intercepts.io_in(port, size, cpl)

    def _on_out(self, uc: Uc, port: int, size: int, value: int, _: object) -> None:
        cpl = self.cpl
        if self._io_denied(cpl):
            return
        self.intercepts.io_out(port, size, value, cpl)

    def _on_cpuid(self, uc: Uc, _: object) -> bool:
        leaf = uc.reg_read(X.UC_X86_REG_RAX) & 0xFFFFFFFF
        subleaf = uc.reg_read(X.UC_X86_REG_RCX) & 0xFFFFFFFF
        regs = self.intercepts.cpuid(leaf, subleaf)
        if regs is None:
            return False  # let the emulated CPU answer
        for r, v in zip((X.UC_X86_REG_RAX, X.UC_X86_REG_RBX, X.UC_X86_REG_RCX, X.UC_X86_REG_RDX), regs):
            uc.reg_write(r, v & 0xFFFFFFFF)
        return True

    def _on_invalid(self, uc: Uc, _: object) -> bool:
        """#UD from the emulator: VMCALL (the hypercall instruction) or a real invalid opcode.
        Unicorn leaves emu_start after this hook; :meth:`run` completes it."""
        if self._pending is None:
            rip = uc.reg_read(X.UC_X86_REG_RIP)
            # TLFS: a hypercall from CPL > 0 raises #UD, like any invalid opcode.
            if self.read_virt(rip, 3) == VMCALL and self.cpl == 0:
                self._pending = _Pending(hypercall=True)
            else:
                self._pending = _Pending(6)
        uc.emu_stop()
        return True

    def _on_intr(self, uc: Uc, intno: int, _: object) -> None:
        """An exception (or `int n`) the emulator raised: RIP is the faulting instruction (the next
        one for `int n`). Note it and stop; :meth:`run` delivers it through the guest IDT."""
        if self._pending is None:
            blob = bytes(uc.context_save())
            software = struct.unpack_from("<i", blob, CTX_IS_INT)[0] == 1
            error = struct.unpack_from("<i", blob, CTX_ERROR_CODE)[0] & 0xFFFFFFFF
            self._pending = _Pending(intno, error if intno in ERROR_CODE_VECTORS else None, software)
        uc.emu_stop()

    # --- the CPU's part: exception and interrupt delivery -----------------------------------------
    def deliver(self, vector: int, error: int | None, software: bool = False, external: bool = False,
                clear_in_flight: bool = False) -> None:
        """Deliver a vector through the guest IDT as an x86-64 CPU does (Intel SDM vol. 3, 6.14)."""
        if self._delivering:
            first = self._delivering[-1]
            if first == 8:
                raise GuestShutdown(f"triple fault: a fault ({FAULT_NAMES.get(vector, vector)}) while "
                                    f"delivering a double fault")
            if (first in CONTRIBUTORY or first == 14) and (vector in CONTRIBUTORY or vector == 14):
                vector, error = 8, 0
        self._delivering.append(vector)
        try:
            problem = self._try_deliver(vector, error, software, clear_in_flight)
        finally:
            self._delivering.pop()
        if problem is not None:
            fault_vector, fault_error = problem
            self._delivering.append(vector)
            try:
                self.deliver(fault_vector, fault_error, clear_in_flight=clear_in_flight)
            finally:
                self._delivering.pop()

    def _try_deliver(self, vector: int, error: int | None, software: bool,
                     clear_in_flight: bool) -> tuple[int, int] | None:
        """Returns the (vector, error) of a fault raised by the delivery itself, or None on success."""
        uc = self.uc
        cr3, cr0 = self._paging()
        mem = self.memory
        cs = uc.reg_read(X.UC_X86_REG_CS)
        cpl = cs & 3
        _, idt_base, idt_limit, _ = uc.reg_read(X.UC_X86_REG_IDTR)
        gate_error = vector * 8 + 2  # IDT entry, EXT bit
        if vector * 16 + 15 > idt_limit:
            return 13, gate_error
        gate = mem.read_virt(cr3, cr0, idt_base + vector * 16, 16)
        if gate is None:
            return 14, 0
        lo, hi = struct.unpack("<QQ", gate)
        attr = (lo >> 40) & 0xFF
        gate_type, dpl = attr & 0xF, (attr >> 5) & 3
        if gate_type not in (0xE, 0xF):
            return 13, gate_error
        if software and dpl < cpl:
            return 13, gate_error
        if not attr & 0x80:
            return 11, gate_error
        target = (lo & 0xFFFF) | (((lo >> 48) & 0xFFFF) << 16) | ((hi & 0xFFFFFFFF) << 32)
        selector = (lo >> 16) & 0xFFFF
        desc = self._gdt_descriptor(selector, cr3, cr0)
        if desc is None:
            return 13, selector & 0xFFFC
        e1, e2 = desc
        new_cpl = (e2 >> 13) & 3
        if not (e2 >> 15) & 1 or not (e2 >> 11) & 1 or not (e2 >> 21) & 1:  # present, code, 64-bit
            return 13, selector & 0xFFFC
        rsp = uc.reg_read(X.UC_X86_REG_RSP)
        ss = uc.reg_read(X.UC_X86_REG_SS)
        rflags = uc.reg_read(X.UC_X86_REG_RFLAGS)
        rip = uc.reg_read(X.UC_X86_REG_RIP)
        if new_cpl < cpl:
            _, tss_base, _, _ = uc.reg_read(X.UC_X86_REG_TR)
            rsp0 = mem.read_virt(cr3, cr0, tss_base + 4, 8)
            if rsp0 is None:
                return 10, 0
            stack = struct.unpack("<Q", rsp0)[0]
        else:
            stack = rsp
        stack &= ~0xF
        frame = [rip, cs, rflags, rsp, ss]
        if error is not None:
            frame.insert(0, error & 0xFFFFFFFF)
        new_rsp = stack - 8 * len(frame)
        if not mem.write_virt(cr3, cr0, new_rsp, struct.pack(f"<{len(frame)}Q", *frame)):
            return 12 if new_cpl == cpl else 14, 0
        if new_cpl != cpl or clear_in_flight:
            self._patch_context(new_cpl if new_cpl != cpl else None, selector, e1, e2, clear_in_flight)
        new_flags = rflags & ~(RFLAGS_TF | RFLAGS_NT | RFLAGS_RF | RFLAGS_VM)
        if gate_type == 0xE:
            new_flags &= ~RFLAGS_IF  # interrupt gate: handlers start with interrupts off
        uc.reg_write(X.UC_X86_REG_RSP, new_rsp)
        uc.reg_write(X.UC_X86_REG_RFLAGS, new_flags)
        uc.reg_write(X.UC_X86_REG_RIP, target)
        return None

    def _gdt_descriptor(self, selector: int, cr3: int, cr0: int) -> tuple[int, int] | None:
        _, gdt_base, gdt_limit, _ = self.uc.reg_read(X.UC_X86_REG_GDTR)
        index = selector & ~7
        if selector & 4 or index == 0 or index + 7 > gdt_limit:
            return None
        raw = self.memory.read_virt(cr3, cr0, gdt_base + index, 8)
        if raw is None:
            return None
        e1, e2 = struct.unpack("<II", raw)
        return e1, e2

    def _patch_context(self, new_cpl: int | None, selector: int, e1: int, e2: int, clear_in_flight: bool) -> None:
        """Change what reg_write cannot: the CPL with its CS/SS caches, and QEMU's in-flight exception."""
        ctx = self.uc.context_save()
        blob = bytearray(bytes(ctx))
        if new_cpl is not None:
            limit = (e1 & 0xFFFF) | (e2 & 0xF0000)
            if e2 & (1 << 23):
                limit = (limit << 12) | 0xFFF
            base = ((e1 >> 16) & 0xFFFF) | ((e2 & 0xFF) << 16) | (e2 & 0xFF000000)
            struct.pack_into(_SEGFMT, blob, CTX_SEGS + SEG_CS * CTX_SEG_SIZE,
                             (selector & ~3) | new_cpl, base, limit, e2 & 0x00FFFF00)
            # 64-bit mode loads SS with a NULL selector whose RPL is the new CPL.
            struct.pack_into(_SEGFMT, blob, CTX_SEGS + SEG_SS * CTX_SEG_SIZE, new_cpl, 0, 0, new_cpl << 13)
            hflags = struct.unpack_from("<I", blob, CTX_HFLAGS)[0]
            struct.pack_into("<I", blob, CTX_HFLAGS, (hflags & ~3) | new_cpl)
        if clear_in_flight:
            struct.pack_into("<i", blob, CTX_OLD_EXCEPTION, -1)
        ctypes.memmove(ctx.context, bytes(blob), len(blob))
        self.uc.context_restore(ctx)
