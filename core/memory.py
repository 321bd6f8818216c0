"""Guest physical memory of one partition, and the page walk the core needs
when it acts as the CPU (pushing an interrupt frame, reading the IDT).

Unicorn's ``mem_read``/``mem_write`` address guest *physical* memory; a guest
with paging on names things by *virtual* address, so the core walks the
guest's own 4-level page tables exactly as the MMU would.
"""

from __future__ import annotations

import struct

from unicorn import Uc, UcError

PAGE = 4096
_P, _W, _U, _PS = 0x1, 0x2, 0x4, 0x80
_ADDR = 0x000F_FFFF_FFFF_F000


class GuestMemoryError(Exception):
    """A guest address the core was asked to touch is not there."""


class GuestMemory:
    """RAM at guest physical [0, size)."""

    def __init__(self, uc: Uc, size: int) -> None:
        if size % (2 << 20) or not (2 << 20) <= size <= (1 << 30):
            raise ValueError(f"guest memory must be a multiple of 2 MiB between 2 MiB and 1 GiB, not {size}")
        self.uc = uc
        self.size = size
        uc.mem_map(0, size)

    def read(self, pa: int, n: int) -> bytes:
        if pa < 0 or pa + n > self.size:
            raise GuestMemoryError(f"guest physical {pa:#x}+{n} is outside RAM")
        return bytes(self.uc.mem_read(pa, n))

    def write(self, pa: int, data: bytes) -> None:
        if pa < 0 or pa + len(data) > self.size:
            raise GuestMemoryError(f"guest physical {pa:#x}+{len(data)} is outside RAM")
        self.uc.mem_write(pa, data)

    def read_u64(self, pa: int) -> int:
        return struct.unpack("<Q", self.read(pa, 8))[0]

    def translate(self, cr3: int, cr0: int, va: int, write: bool = False, user: bool = False) -> int | None:
        """Guest virtual -> physical, or None where the MMU would fault."""
        if not cr0 & (1 << 31):
            return va if 0 <= va < self.size else None
        table = cr3 & _ADDR
        for shift in (39, 30, 21, 12):
            try:
                entry = self.read_u64(table + ((va >> shift) & 511) * 8)
            except (GuestMemoryError, UcError):
                return None
            if not entry & _P or (user and not entry & _U) or (write and not entry & _W):
                return None
            if shift in (30, 21) and entry & _PS:
                size = 1 << shift
                return (entry & _ADDR & ~(size - 1)) | (va & (size - 1))
            table = entry & _ADDR
        return table | (va & (PAGE - 1))

    def read_virt(self, cr3: int, cr0: int, va: int, n: int, user: bool = False) -> bytes | None:
        out = bytearray()
        while n > 0:
            pa = self.translate(cr3, cr0, va, user=user)
            chunk = min(n, PAGE - (va & (PAGE - 1)))
            if pa is None or pa + chunk > self.size:
                return None
            out += self.read(pa, chunk)
            va, n = va + chunk, n - chunk
        return bytes(out)

    def write_virt(self, cr3: int, cr0: int, va: int, data: bytes) -> bool:
        """Write as ring 0 would (supervisor, honouring read-only pages); False if it would fault."""
        pieces = []
        off = 0
        while off < len(data):
            pa = self.translate(cr3, cr0, va + off, write=True)
            chunk = min(len(data) - off, PAGE - ((va + off) & (PAGE - 1)))
            if pa is None or pa + chunk > self.size:
                return False
            pieces.append((pa, data[off:off + chunk]))
            off += chunk
        for pa, piece in pieces:
            self.write(pa, piece)
        return True
