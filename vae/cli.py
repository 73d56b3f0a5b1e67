"""Command-line helpers shared by ``vae.train`` and ``vae.evaluate``."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from .distributed import env_rank


class ArgParser(argparse.ArgumentParser):
    """argparse that reports a bad flag or value in one line, without the usage block."""

    def error(self, message: str) -> NoReturn:
        if env_rank() == 0:  # under torchrun every process parses: one says it
            print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def int_list(text: str) -> tuple[int, ...]:
    """'512,256' -> (512, 256), for --hidden."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values
