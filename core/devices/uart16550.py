"""A 16550 UART: the partition's serial console (COM1: ports 0x3F8-0x3FF, IRQ 4).

Transmit is immediate (the transmitter is always empty, so LSR.THRE is set).
Receive goes through a FIFO; when it holds data and the guest enabled the
"received data available" interrupt (IER bit 0, with MCR.OUT2 gating the IRQ
line as on a PC), the UART raises its IRQ. The FIFO is deeper than a real
16550's 16 bytes so that pasted text survives; bytes beyond it are dropped
and counted as overruns. A Ctrl-C flushes what the guest has not read yet,
as a terminal's INTR flushes typeahead: it can be neither dropped by an
overrun nor kept waiting behind keys a busy program never reads.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

RBR_THR, IER, IIR_FCR, LCR, MCR, LSR, MSR, SCR = range(8)
LSR_DR, LSR_OE, LSR_THRE, LSR_TEMT = 0x01, 0x02, 0x20, 0x40
CTRL_C = 0x03


class Uart16550:
    FIFO_DEPTH = 4096
    kind = "uart"

    def __init__(self, base: int, on_output: Callable[[bytes], None], raise_irq: Callable[[], None]) -> None:
        self.base = base
        self._on_output = on_output
        self._raise_irq = raise_irq
        self.rx: collections.deque[int] = collections.deque()
        self.ier = self.lcr = self.mcr = self.scr = 0
        self.dll, self.dlm = 1, 0
        self.overruns = 0
        self._overrun_flag = False

    @property
    def ports(self) -> range:
        return range(self.base, self.base + 8)

    def handles(self, port: int) -> bool:
        return self.base <= port <= self.base + 7

    @property
    def _dlab(self) -> bool:
        return bool(self.lcr & 0x80)

    def _irq_enabled(self) -> bool:
        return bool(self.ier & 0x01) and bool(self.mcr & 0x08)

    def receive(self, data: bytes) -> None:
        """Bytes typed at the console arrive on the line."""
        if CTRL_C in data:
            self.rx.clear()
            data = data[data.rfind(CTRL_C):]
        for b in data:
            if len(self.rx) >= self.FIFO_DEPTH:
                self.overruns += 1
                self._overrun_flag = True
                continue
            self.rx.append(b)
        if self.rx and self._irq_enabled():
            self._raise_irq()

    def read(self, port: int, size: int = 1) -> int:
        reg = port - self.base
        if reg == RBR_THR:
            if self._dlab:
                return self.dll
            return self.rx.popleft() if self.rx else 0
        if reg == IER:
            return self.dlm if self._dlab else self.ier
        if reg == IIR_FCR:
            return 0xC4 if self.rx and self.ier & 0x01 else 0xC1  # FIFOs on; data available / none
        if reg == LCR:
            return self.lcr
        if reg == MCR:
            return self.mcr
        if reg == LSR:
            lsr = LSR_THRE | LSR_TEMT | (LSR_DR if self.rx else 0) | (LSR_OE if self._overrun_flag else 0)
            self._overrun_flag = False
            return lsr
        if reg == MSR:
            return 0xB0  # CTS, DSR, DCD: a terminal is attached
        return self.scr

    def write(self, port: int, size: int, value: int) -> None:
        reg = port - self.base
        value &= 0xFF
        if reg == RBR_THR:
            if self._dlab:
                self.dll = value
            else:
                self._on_output(bytes((value,)))
        elif reg == IER:
            if self._dlab:
                self.dlm = value
            else:
                self.ier = value & 0x0F
                if self.rx and self._irq_enabled():
                    self._raise_irq()
        elif reg == IIR_FCR:
            if value & 0x02:
                self.rx.clear()
        elif reg == LCR:
            self.lcr = value
        elif reg == MCR:
            self.mcr = value & 0x1F
        elif reg == SCR:
            self.scr = value
