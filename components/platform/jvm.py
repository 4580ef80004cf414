"""JVM heap sizes derived from a container's memory limit."""

from decimal import Decimal

from components.settings.quantities import quantity_value

MEBIBYTE = 1024 * 1024


def heap_megabytes(memory_limit: str, fraction: float) -> int:
    """The heap, in MiB, that leaves (1 - fraction) of the container's limit to the rest of the process."""
    return int(quantity_value(memory_limit) * Decimal(str(fraction)) // MEBIBYTE)
