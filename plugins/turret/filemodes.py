"""Turret's state is private to the user running it: directories 0700, files 0600, whatever the umask.

The landing store and the warehouse hold what users typed into an app, the control plane holds API key
hashes; none of it is for other local users. The stores create their folders with :func:`private_dir` and
their files with :data:`PRIVATE_FILE` (or :func:`private_file` where a library creates the file).
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: str | os.PathLike[str]) -> Path:
    """``mkdir -p`` where every folder this call creates is 0700 (folders that exist keep their mode)."""
    path = Path(path)
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue  # another process made it first; it made it private too
        os.chmod(folder, PRIVATE_DIR)  # mkdir's mode is masked by the umask; chmod's is not
    if not path.is_dir():
        raise NotADirectoryError(f"{path} exists and is not a directory")
    return path


def private_file(*paths: str | os.PathLike[str]) -> None:
    """Make the existing ones of ``paths`` 0600 (a database a library created with the umask's mode)."""
    for path in paths:
        try:
            os.chmod(path, PRIVATE_FILE)
        except FileNotFoundError:
            continue
