"""argparse types: numbers above zero, load objectives."""

import argparse
from collections.abc import Callable
from typing import TypeVar

from verify.load import slo
from verify.load.slo import Objective

Number = TypeVar("Number", int, float)


def positive(kind: type[Number]) -> Callable[[str], Number]:
    """An argparse type: a number above zero."""

    def parse(text: str) -> Number:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text}: must be above 0")
        return value

    parse.__name__ = kind.__name__
    return parse


def objective(text: str) -> Objective:
    """An argparse type: an SLO."""
    try:
        return slo.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
