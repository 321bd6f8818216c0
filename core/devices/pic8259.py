"""The 8259A programmable interrupt controller pair (master 0x20/0x21, slave 0xA0/0xA1).

Only what a PC guest's initialisation and EOI use: the ICW1-4 sequence (for the
vector base), the interrupt mask, in-service and request bits, and EOI.
"""

from __future__ import annotations


class Pic8259:
    def __init__(self, command_port: int) -> None:
        self.command_port = command_port
        self.vector_base = 0x08 if command_port == 0x20 else 0x70  # BIOS defaults
        self.imr = 0xFF
        self.irr = 0
        self.isr = 0
        self._icw_step = 0  # 0: operational; 2..4: expecting that ICW on the data port
        self._icw4_needed = False

    def write(self, port: int, value: int) -> None:
        if port == self.command_port:
            if value & 0x10:  # ICW1 starts initialisation
                self._icw_step, self._icw4_needed = 2, bool(value & 1)
                self.imr, self.isr, self.irr = 0, 0, 0
            elif value & 0x20:  # non-specific EOI: clear the highest-priority in-service bit
                for irq in range(8):
                    if self.isr & (1 << irq):
                        self.isr &= ~(1 << irq)
                        break
            return
        if self._icw_step == 2:
            self.vector_base = value & 0xF8
            self._icw_step = 3
        elif self._icw_step == 3:
            self._icw_step = 4 if self._icw4_needed else 0
        elif self._icw_step == 4:
            self._icw_step = 0
        else:
            self.imr = value & 0xFF

    def read(self, port: int) -> int:
        return self.imr if port != self.command_port else self.irr

    def raise_irq(self, irq: int) -> None:
        self.irr |= 1 << irq

    def pending_vector(self) -> int | None:
        """The vector the CPU would take next, without acknowledging it."""
        ready = self.irr & ~self.imr
        if not ready:
            return None
        for irq in range(8):
            if self.isr & (1 << irq):
                return None  # a higher-or-equal priority interrupt is still in service
            if ready & (1 << irq):
                return self.vector_base + irq
        return None

    def acknowledge(self) -> int | None:
        vector = self.pending_vector()
        if vector is not None:
            irq = vector - self.vector_base
            self.irr &= ~(1 << irq)
            self.isr |= 1 << irq
        return vector
