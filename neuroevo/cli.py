"""The ``neuroevo`` command: parse arguments, call the library, return an exit code.

Exit codes: 0 success, 2 bad usage or bad input (one line ``neuroevo: error: ...``, no
traceback unless ``--debug``), 1 anything else.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from neuroevo import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neuroevo",
        description="Neural architecture search by evolution, each generation trained jointly "
        "in a weighted mixer.",
    )
    parser.add_argument("--version", action="version", version=f"neuroevo {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
