"""Benchmarks: one module per benchmark, each with a ``main(argv)``; run with ``python -m bench [name]``.

They are not tests: they print figures and ratios against a baseline measured in the same run, and
write their results as JSON under ``bench/results/``.
"""

from __future__ import annotations

import argparse


def options(name: str, doc: str | None) -> argparse.ArgumentParser:
    """The option parser of benchmark ``name``: ``python -m bench NAME --help`` prints the module docstring,
    and an option it does not know is an error (exit 2) rather than a run of everything on its defaults."""
    return argparse.ArgumentParser(prog=f"python -m bench {name}", description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def one_of(known: tuple[str, ...]):
    """An option's type: comma-separated names, each one of ``known`` (``--sets hwu64,sgd_dev``)."""

    def parse(value: str) -> tuple[str, ...]:
        names = tuple(v.strip() for v in value.split(",") if v.strip())
        wrong = [n for n in names if n not in known]
        if wrong or not names:
            raise argparse.ArgumentTypeError(f"{','.join(wrong) or 'nothing'}: choose from {','.join(known)}")
        return names

    return parse
