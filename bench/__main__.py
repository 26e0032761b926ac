"""``python -m bench [NAME ...]``: run ``bench/<NAME>.py``'s ``main()`` (every benchmark when no name is
given); ``python -m bench NAME --option ...`` runs one with its options (``python -m bench NAME --help``)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))


def main(argv: list[str]) -> int:
    names = available()
    split = next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))
    wanted, opts = argv[:split] or names, argv[split:]
    if opts and len(wanted) != 1:
        print("options go to one benchmark: python -m bench NAME [--option ...]", file=sys.stderr)
        return 2
    unknown = [n for n in wanted if n not in names]
    if unknown:
        print(f"unknown benchmark {', '.join(unknown)}; available: {', '.join(names) or '(none)'}",
              file=sys.stderr)
        return 2
    status = 0
    for name in wanted:
        print(f"== bench {name}", flush=True)
        result = importlib.import_module(f"bench.{name}").main(opts)
        status = status or (result if isinstance(result, int) else 0)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
