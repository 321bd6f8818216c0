"""A GPADL (guest physical address descriptor list): the pages a guest shares with the host.

The host sees a GPADL as one linear buffer whose bytes live in the listed guest pages. This view is
the only way the root's VSPs touch a child's memory: every access is bounded to exactly those
pages, so a guest that lies about indices or lengths can at worst make its own channel fail.
"""

from __future__ import annotations

from ..memory import PAGE, GuestMemory


class GpadlError(Exception):
    """A GPADL naming pages the guest does not have, or an access outside it."""


class GpadlView:
    def __init__(self, memory: GuestMemory, pfns: list[int], handle: int = 0) -> None:
        for pfn in pfns:
            if pfn < 0 or (pfn + 1) * PAGE > memory.size:
                raise GpadlError(f"GPADL page {pfn:#x} is outside the partition's memory")
        self.memory = memory
        self.pfns = list(pfns)
        self.handle = handle
        self.size = len(self.pfns) * PAGE

    def _pieces(self, offset: int, n: int) -> list[tuple[int, int]]:
        if offset < 0 or n < 0 or offset + n > self.size:
            raise GpadlError(f"access {offset:#x}+{n} outside the GPADL's {self.size} bytes")
        pieces = []
        while n > 0:
            page, within = divmod(offset, PAGE)
            chunk = min(n, PAGE - within)
            pieces.append((self.pfns[page] * PAGE + within, chunk))
            offset, n = offset + chunk, n - chunk
        return pieces

    def read(self, offset: int, n: int) -> bytes:
        return b"".join(self.memory.read(gpa, chunk) for gpa, chunk in self._pieces(offset, n))

    def write(self, offset: int, data: bytes) -> None:
        pos = 0
        for gpa, chunk in self._pieces(offset, len(data)):
            self.memory.write(gpa, data[pos:pos + chunk])
            pos += chunk
