"""Topic labels; the code lives in ``turret.labels`` (this name is kept for existing imports)."""

from turret.labels import *  # noqa: F403
from turret.labels import __all__  # noqa: F401
