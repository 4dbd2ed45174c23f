"""``svrecon`` / ``python -m svrecon``: data, train, evaluate, reconstruct, demo.

A user error (a bad argument, a missing or malformed file) is reported as one line on
stderr with exit status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys

from .commands import COMMANDS
from .errors import UsageError

__all__ = ["UsageError", "main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints usage as well)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``svrecon`` argument parser, with every subcommand."""
    parser = _Parser(prog="svrecon", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in COMMANDS:
        add(sub)
    for command in sub.choices.values():  # `svrecon train ... --debug` works too
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show tracebacks of errors")  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (UsageError, ValueError, OSError) as exc:  # OSError: the user's paths
        if args.debug:
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"svrecon: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("svrecon: interrupted", file=sys.stderr)
        return 130
    return 0
