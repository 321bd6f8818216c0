"""Trusted code, measured: the lines and bytes each privilege domain runs in the current design.

Computed from the files the placement layer puts in each domain (host Python modules of the core
and the guest kernel's C, header and assembly files), never typed in: move a component and the
figures follow. A module used by two components of one domain counts once in that domain's total.
Lines are non-blank lines, comments and docstrings included (as the published counts cited below).
The lab's own instrumentation and process glue (telemetry, costs, lab.py, the web side) is not
counted: it has no counterpart in a real hypervisor.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from .placement import DEVICE_KINDS, KINDS, Domain, Kind

if TYPE_CHECKING:
    from .placement import Placement

# Published figures, shown beside ours as cited (shared/reference/cost-model-sources.md), never measured here.
REFERENCE = [
    {"what": "Hyper-V hypervisor binary (Windows Server 2008 R2)", "figure": "hvix64.exe 706,650 bytes",
     "source": "petrunic.com, 2010"},
    {"what": "ESXi footprint", "figure": "ESXi 3i 32 MB on disk; ESXi 4 image ~60-70 MB",
     "source": "vcritical 2009; Citrix blog 2008"},
    {"what": "Xen hypervisor source", "figure": "xen/ 474,305 lines (arch/x86 175,367), comments included",
     "source": "counted in xen-project/xen at c447b73 (2026-08)"},
    {"what": "small verified kernels", "figure": "seL4 8,700 lines C + 600 asm; NOVA ~9k SLOC",
     "source": "ertos.org; NOVA papers"},
    {"what": "open-source Hyper-V device stack (OpenVMM)", "figure": "VMBus 27,380 lines; storvsp 3,779; "
     "emulated IDE 5,900", "source": "counted in microsoft/openvmm at 1488a37 (2026-08)"},
]


def _root() -> Path:
    return Path(str(resources.files("hyperlab")))


@functools.cache
def module_files(pattern: str) -> tuple[str, ...]:
    """Files (relative to the package) a module pattern names; a glob for the guest's sources."""
    root = _root()
    return tuple(sorted(str(p.relative_to(root)) for p in root.glob(pattern) if p.is_file()))


@functools.cache
def measure(path: str) -> tuple[int, int]:
    """(non-blank lines, bytes) of one file of the package; (0, 0) if it is not installed."""
    try:
        data = (_root() / path).read_bytes()
    except OSError:
        return 0, 0
    return sum(1 for line in data.splitlines() if line.strip()), len(data)


def _files(patterns: tuple[str, ...]) -> list[str]:
    return list(dict.fromkeys(f for pattern in patterns for f in module_files(pattern)))


def _size(files: list[str]) -> dict[str, int]:
    sizes = [measure(f) for f in files]
    return {"lines": sum(s[0] for s in sizes), "bytes": sum(s[1] for s in sizes)}


def describe_components(placement: Placement) -> dict:
    """``components`` (each: name, domain, lines, bytes, ...), ``tcb`` per domain, the attack surface."""
    components = []
    by_domain: dict[Domain, list[str]] = {d: [] for d in Domain if d is not Domain.HYPERVISOR
                                          or placement.hypervisor_present}
    for c in placement.components():
        info = KINDS[c.kind]
        files = _files(info.modules)
        by_domain[c.domain] += files
        components.append({"name": c.name, "kind": c.kind.value, "domain": c.domain.value,
                           "description": info.description, "parses_child_bytes": info.parses_child_bytes,
                           **_size(files)})
    tcb = {d.value: {**_size(list(dict.fromkeys(files))), "files": len(set(files))} for d, files in by_domain.items()}
    # A child's attack surface: what parses bytes it controls (not the root's own devices).
    root = placement.hv.root.name
    surface = [{"name": c["name"], "domain": c["domain"]} for c in components if c["parses_child_bytes"]
               and not (c["name"].startswith(f"{root}.") and Kind(c["kind"]) in DEVICE_KINDS)]
    return {"components": components, "tcb": tcb, "attack_surface": surface, "tcb_reference": REFERENCE}
