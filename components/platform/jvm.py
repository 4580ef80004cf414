"""JVM memory derived from a container's memory limit: a heap, and the budget of everything beside it."""

import math
from dataclasses import dataclass
from decimal import Decimal

from components.settings.quantities import quantity_value

MEBIBYTE = 1024 * 1024


def heap_megabytes(memory_limit: str, fraction: float) -> int:
    """The heap, in MiB, that leaves (1 - fraction) of the container's limit to the rest of the process."""
    return int(quantity_value(memory_limit) * Decimal(str(fraction)) // MEBIBYTE)


@dataclass(frozen=True, kw_only=True)
class OffHeap:
    """What a JVM holds beside its heap: each part capped by a flag, threads by their count times -Xss."""

    metaspace_mb: int
    """Class metadata of the server, its plugins and the classes it generates (-XX:MaxMetaspaceSize)."""
    code_cache_mb: int
    """JIT-compiled code (-XX:ReservedCodeCacheSize)."""
    direct_mb: int
    """NIO direct buffers: network and TLS buffers (-XX:MaxDirectMemorySize)."""
    thread_stack_kb: int
    """One thread's stack (-Xss)."""
    threads: int
    """Threads the process runs at its busiest (measured, with a margin)."""
    native_mb: int
    """What no flag caps: symbols, the compilers' arenas, the JVM's own structures, malloc's arenas."""
    gc_per_heap: Decimal
    """The collector's own structures (card table, remembered sets, marking bitmaps) per MiB of heap."""

    def fixed_mb(self) -> int:
        """Every part that does not grow with the heap, in MiB."""
        stacks = self.threads * self.thread_stack_kb // 1024
        return self.metaspace_mb + self.code_cache_mb + self.direct_mb + stacks + self.native_mb


@dataclass(frozen=True, kw_only=True)
class JvmBudget:
    """A heap and the off-heap parts that fit one container's memory limit together."""

    limit_mb: int
    heap_mb: int
    off_heap: OffHeap

    def gc_mb(self) -> int:
        """The collector's overhead for this heap, in whole MiB (rounded up)."""
        return math.ceil(self.heap_mb * self.off_heap.gc_per_heap)

    def total_mb(self) -> int:
        """The largest footprint the budget allows: heap, collector and every off-heap part."""
        return self.heap_mb + self.gc_mb() + self.off_heap.fixed_mb()

    def flags(self) -> list[str]:
        """The JVM options that hold the process to the budget (the heap committed at start, so never resized)."""
        parts = self.off_heap
        return [
            f"-Xms{self.heap_mb}m",
            f"-Xmx{self.heap_mb}m",
            f"-XX:MaxMetaspaceSize={parts.metaspace_mb}m",
            f"-XX:ReservedCodeCacheSize={parts.code_cache_mb}m",
            f"-XX:MaxDirectMemorySize={parts.direct_mb}m",
            f"-Xss{parts.thread_stack_kb}k",
        ]


def jvm_budget(memory_limit: str, off_heap: OffHeap, heap_alignment_mb: int = 1) -> JvmBudget:
    """The largest heap that fits the limit with its collector's overhead and the off-heap parts.

    heap * (1 + gc_per_heap) + fixed <= limit, the heap rounded down to a multiple of heap_alignment_mb
    (G1 rounds a heap up to whole regions: a heap not a multiple of the region size would outgrow the
    budget). Raises ValueError when the off-heap parts leave no heap.
    """
    limit_mb = int(quantity_value(memory_limit) // MEBIBYTE)
    room = Decimal(limit_mb - off_heap.fixed_mb()) / (1 + off_heap.gc_per_heap)
    fitted = JvmBudget(limit_mb=limit_mb, heap_mb=int(room) // heap_alignment_mb * heap_alignment_mb, off_heap=off_heap)
    if fitted.heap_mb > 0 and fitted.total_mb() > limit_mb:
        # The collector's share, rounded up, can tip an exact fit over by a MiB: one alignment step less.
        fitted = JvmBudget(limit_mb=limit_mb, heap_mb=fitted.heap_mb - heap_alignment_mb, off_heap=off_heap)
    if fitted.heap_mb <= 0:
        raise ValueError(
            f"a {memory_limit} limit leaves no heap: the JVM needs {off_heap.fixed_mb()} MiB beside it "
            "(metaspace, code cache, direct buffers, thread stacks, native)"
        )
    return fitted
