"""VMBus: the shared-memory transport between an enlightened child and the root (docs/vmbus.md).

* ``ring``     — ``struct hv_ring_buffer`` and its packets, as Linux ``drivers/hv/ring_buffer.c``
  reads and writes them. Pure Python, standard library only, so the same file also runs in the
  browser under Pyodide for lesson exercises.
* ``messages`` — wire formats: channel management messages, SynIC message slots, hypercall inputs,
  the storage (vstor) packets and the integration-service headers.

Nothing is imported here on purpose: importing ``hyperlab.core.vmbus.ring`` loads exactly that file.
"""
