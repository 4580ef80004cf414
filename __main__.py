"""Entry point of `pulumi up`: everything is declared by components.program."""

from components.program import run

run()
