"""The ``lrenum`` command line. Bad input gives one line on stderr and exit code 2.

Conventions for every verb: progress and human summaries go to stderr (``-q`` silences the
progress); with ``--json`` stdout holds exactly one JSON object and nothing else.
``common`` (shared helpers), ``commands`` (the verbs), ``parser`` (options and help).
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

from ..errors import InputError
from .common import EXIT_BAD_INPUT
from .parser import build_parser

__all__ = ["main", "build_parser", "EXIT_BAD_INPUT"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()
        return code
    except InputError as exc:
        print(f"lrenum: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except MemoryError:
        print("lrenum: error: out of memory (try a smaller --batch-size)", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        # the reader went away (`lrenum inspect f.h5 | head`): stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:   # the device ran out of memory: JAX raises its own error type
        if type(exc).__name__ == "JaxRuntimeError" and "RESOURCE_EXHAUSTED" in str(exc):
            print("lrenum: error: the device ran out of memory (try a smaller --batch-size)", file=sys.stderr)
            return EXIT_BAD_INPUT
        raise
    except KeyboardInterrupt:
        print("lrenum: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
