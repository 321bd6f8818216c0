"""Modelled costs, in CPU cycles on real x86-64 hardware, of the transitions the lab records.

These are *models*, not measurements of this emulator: the UI labels them
"modelled (real hardware)" and names the source. Figures come from published
measurements collected in ``shared/reference/cost-model-sources.md``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cost:
    cycles: int
    source: str


COSTS: dict[str, Cost] = {
    # A VM exit and re-entry handled inside the hypervisor (port I/O, CPUID, HLT wake-up).
    "vm_exit": Cost(1_500, "kvm-unit-tests vmcall, ~1,530-1,560 cycles on Skylake-SP (W. Li, kvm list, 2020)"),
    "cpuid_exit": Cost(1_050, "kvm-unit-tests cpuid exit, ~1,020-1,100 cycles (Christopherson & Kauer, 2024)"),
    # Hyper-V publishes no hypercall latency; modelled as a VM exit round trip (TLFS gives none).
    "hypercall": Cost(1_500, "no published figure; modelled as a VM exit round trip"),
    # Exception/interrupt delivery inside the guest: no exit on real hardware, but an
    # interrupt injected by the hypervisor costs an injection.
    "interrupt_injection": Cost(2_500, "tscdeadline_immed timer injection ~2,500 cycles (W. Li, kvm list, 2020)"),
    "guest_exception": Cost(3_000, "minor page fault, a few thousand cycles (ACM TACO 2022)"),
    "syscall": Cost(120, "getppid round trip 115-150 cycles, no KPTI (K. Garloff, T-Systems OTC, 2018)"),
    # Hosted design: the VMM driver saves and restores all user- and system-visible CPU state to go
    # between the host's world and the VM's; no cycle count is published, so modelled as a VM switch.
    "world_switch": Cost(6_000, "no cycle count published; 'more heavyweight than a normal process switch' "
                                "(Sugerman et al., USENIX ATC 2001): modelled as a VM context switch"),
    "partition_switch": Cost(6_000, "process/VM context switch, a few us (Sigoure 2010; Li et al. 2007)"),
}


def cycles(kind: str) -> int:
    return COSTS[kind].cycles
