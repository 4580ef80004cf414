"""Presto's memory from its container's limit: the JVM's budget (heap and off-heap) and the query memory limits.

Pure and free of the settings model, so that the settings can check a limit with the same figures.
"""

from dataclasses import dataclass, replace
from decimal import Decimal

from components.platform.jvm import JvmBudget, OffHeap, jvm_budget

G1_REGION_MB = 32
"""-XX:G1HeapRegionSize: Presto's pages are large arrays; smaller regions would make many of them humongous."""

# Measured on the real Presto 0.287 (Java 11) with every plugin the image ships (41), a coordinator that
# runs tasks and a worker, after the 22 TPC-H queries on `tiny` (-XX:NativeMemoryTracking=summary):
# metaspace 157 and 123 MiB, JIT code 75 and 50 MiB, the collector 9 to 10% of the heap, symbols and
# the JVM's own structures about 35 MiB, and about 60 MiB resident that NMT does not see (malloc's
# arenas, mapped libraries); at most 353 and 219 threads. The caps below keep a margin over each.
COORDINATOR = OffHeap(
    metaspace_mb=256,
    code_cache_mb=128,
    direct_mb=64,
    thread_stack_kb=1024,
    threads=400,
    native_mb=96,
    gc_per_heap=Decimal("0.1"),
)
"""The coordinator: the HTTP server, discovery, planning, the query state machines (and tasks, if it runs them)."""
WORKER = replace(COORDINATOR, threads=300)
"""A worker: task executors, exchanges and the HTTP server; fewer threads, the same caps otherwise."""

MIN_HEAP_MB = 512
"""Below this Presto cannot hold its own structures beside a query's pages: a worker with a 384 MiB heap
ran out of it counting tpch.tiny.lineitem."""

USER_SHARE = Decimal("0.3")
"""One query's user memory on one node (query.max-memory-per-node), as a share of the heap."""
TOTAL_SHARE = Decimal("0.4")
"""One query's user and system memory on one node (query.max-total-memory-per-node): the reserved pool too."""
HEADROOM_SHARE = Decimal("0.3")
"""Set aside for what Presto does not track (memory.heap-headroom-per-node). With the reserved pool
(TOTAL_SHARE), the general pool keeps the other 30%: one query's user memory fits it."""


def budget(memory_limit: str, coordinator: bool) -> JvmBudget:
    """The JVM budget of a coordinator's or worker's container with this memory limit.

    Raises ValueError when the limit leaves less than MIN_HEAP_MB of heap.
    """
    off_heap = COORDINATOR if coordinator else WORKER
    fitted = jvm_budget(memory_limit, off_heap, heap_alignment_mb=G1_REGION_MB)
    if fitted.heap_mb < MIN_HEAP_MB:
        raise ValueError(
            f"a {memory_limit} limit leaves a {fitted.heap_mb} MiB heap beside the JVM's {off_heap.fixed_mb()} MiB "
            f"off the heap; Presto needs at least {MIN_HEAP_MB} MiB of heap"
        )
    return fitted


@dataclass(frozen=True, kw_only=True)
class MemoryPlan:
    """Presto's query memory limits on one node, all shares of its heap."""

    heap_mb: int
    per_node_user_mb: int
    per_node_total_mb: int
    headroom_mb: int


def memory_plan(memory_limit: str, coordinator: bool) -> MemoryPlan:
    """Split the budget's heap between one query's memory, the reserved pool and the headroom."""
    heap = budget(memory_limit, coordinator).heap_mb
    return MemoryPlan(
        heap_mb=heap,
        per_node_user_mb=int(heap * USER_SHARE),
        per_node_total_mb=int(heap * TOTAL_SHARE),
        headroom_mb=int(heap * HEADROOM_SHARE),
    )
