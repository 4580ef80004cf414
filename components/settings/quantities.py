"""Kubernetes resource quantities: strict grammar check and numeric value."""

import re
from decimal import Decimal

from kubernetes.utils import parse_quantity

# The API server's grammar (k8s.io/apimachinery/pkg/api/resource): a signed decimal number followed
# by a binary suffix, a decimal suffix or a decimal exponent. The client's parse_quantity alone is
# laxer (it takes "1K" and surrounding blanks), so the format is checked here first.
# Ref: https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/
_QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")

QUANTITY_HELP = (
    "a Kubernetes quantity: a number with an optional suffix Ki, Mi, Gi, Ti (binary), "
    "m, k, M, G, T (decimal), e.g. '512Mi', '2Gi', '250m', '1.5'"
)


def quantity_value(text: str) -> Decimal:
    """Return the numeric value of a Kubernetes quantity, or raise ValueError naming the grammar."""
    if not isinstance(text, str) or not _QUANTITY.match(text):
        raise ValueError(f"not {QUANTITY_HELP}")
    return Decimal(parse_quantity(text))


def format_bytes(value: Decimal | int) -> str:
    """Render a byte count in the largest binary unit that keeps two decimals readable."""
    amount = Decimal(value)
    for unit in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        size = Decimal(1024) ** ("KMGTPE".index(unit[0]) + 1)
        if amount >= size:
            return f"{(amount / size).quantize(Decimal('0.01')).normalize():f}{unit}"
    return f"{amount:f}"


def format_cores(value: Decimal | int) -> str:
    """Render a CPU amount as millicores."""
    return f"{int(Decimal(value) * 1000)}m"
