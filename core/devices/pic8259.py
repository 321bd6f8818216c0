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


# --- the PC's master/slave pair -----------------------------------------------------------------------
# On a PC the slave's INT output is wired to the master's IR2: IRQ 8-15 (the IDE disk's IRQ 14 is the
# slave's IR6) reach the CPU through master IRQ 2. The master treats the cascade like any input (mask,
# priority, in-service); on acknowledge the slave supplies the vector. Guests EOI the slave, then the
# master.
CASCADE_IRQ = 2


def _drive_cascade(master: Pic8259, slave: Pic8259) -> None:
    """The master's IR2 follows the slave's INT line: up while the slave has something to deliver."""
    if slave.pending_vector() is not None:
        master.irr |= 1 << CASCADE_IRQ
    else:
        master.irr &= ~(1 << CASCADE_IRQ)


def cascade_pending_vector(master: Pic8259, slave: Pic8259) -> int | None:
    """The vector the CPU would take next from the pair, without acknowledging it."""
    _drive_cascade(master, slave)
    vector = master.pending_vector()
    if vector is not None and vector == master.vector_base + CASCADE_IRQ:
        return slave.pending_vector()
    return vector


def cascade_acknowledge(master: Pic8259, slave: Pic8259) -> int | None:
    """The CPU takes the pair's interrupt: both controllers mark it in service when it comes via the slave."""
    _drive_cascade(master, slave)
    vector = master.acknowledge()
    if vector is not None and vector == master.vector_base + CASCADE_IRQ:
        return slave.acknowledge()
    return vector
