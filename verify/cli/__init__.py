"""verify's command line: `python -m verify COMMAND [flags]`, one module per command's flags and checks.

Parsing imports no client library: each command imports what it runs only when it runs (or is planned),
so `--help` and `--version` are instant and work without the clients installed.
"""
