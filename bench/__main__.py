"""``python -m bench [name ...]``: run ``bench/<name>.py``'s ``main()``; every benchmark when no name is
given."""

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
    wanted = argv or names
    unknown = [n for n in wanted if n not in names]
    if unknown:
        print(f"unknown benchmark {', '.join(unknown)}; available: {', '.join(names) or '(none)'}",
              file=sys.stderr)
        return 2
    status = 0
    for name in wanted:
        print(f"== bench {name}", flush=True)
        result = importlib.import_module(f"bench.{name}").main()
        status = status or (result if isinstance(result, int) else 0)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
