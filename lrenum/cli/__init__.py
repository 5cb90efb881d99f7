"""The ``lrenum`` command line. Bad input gives one line on stderr and exit code 2.

Conventions for every verb: progress and human summaries go to stderr (``-q`` silences the
progress); with ``--json`` stdout holds exactly one JSON object and nothing else.
``common`` (shared helpers), ``commands`` (the verbs), ``local_command`` (``local``, and ``verify`` of
its files), ``parser`` (options and help).
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

from ..errors import DeviceOutOfMemory, LrenumError
from .common import EXIT_BAD_INPUT
from .parser import build_parser

__all__ = ["main", "build_parser", "EXIT_BAD_INPUT"]


def main(argv: Optional[Sequence[str]] = None, hooks=None) -> int:
    """Run one command; returns its exit code (0 success, 1 verify failed, 2 bad input, 3 a write
    failed, 4 a worker or the device failed, 130 interrupted). ``hooks``: fault injection for
    tests (:class:`lrenum.distributed.FaultHooks`), passed to sharded runs."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args, hooks=hooks) if hooks is not None else args.func(args)
        sys.stdout.flush()
        return code
    except LrenumError as exc:
        print(f"lrenum: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except MemoryError:
        exc = DeviceOutOfMemory("out of host memory (try a smaller --batch-size)")
        print(f"lrenum: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # the reader went away (`lrenum inspect f.h5 | head`): stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("lrenum: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
