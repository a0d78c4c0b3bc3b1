"""Run a `stb-origin` subcommand in process, as main() would but for its logging set-up
(which would replace pytest's handlers)."""

from __future__ import annotations

import sys

from stb_origin import cli
from stb_origin.settings import Settings


def run_cli(settings: Settings, *argv: str) -> int:
    args = cli.build_parser().parse_args(list(argv))
    try:
        return int(args.run(settings, args))
    except ValueError as exc:  # as main() reports it
        print(f"stb-origin: {exc}", file=sys.stderr)
        return 1
