"""Entry point of `python -m verify`."""

import os
import sys
import threading

from verify.cli import main

code = main()
if threading.active_count() > 1:
    # A probe abandoned at its deadline or at Ctrl-C may still be inside a client library's C code
    # (librdkafka, libcurl, a socket); the interpreter's shutdown could wait on it. The reports are
    # written and the cleanup done, so leave now with the run's exit code.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
