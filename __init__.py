"""hyperlab: a teaching lab where students watch a real hypervisor at work."""
