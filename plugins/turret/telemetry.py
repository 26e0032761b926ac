"""Usage reporting of the tools Turret runs, switched off: the one list of the variables that do it.

Turret is self-hosted and must not call home, nor make its tools do so: astronomer-cosmos reports every dbt
task to a Scarf gateway unless told not to, and dbt, great-expectations and the Hugging Face hub have
switches of their own. ``TELEMETRY_OFF`` is applied over any environment Turret starts a tool in (Airflow
processes through ``turret.airflow_env``, dbt through ``turret.dbt``), so an inherited setting cannot turn
one back on. ``tests/e2e`` checks that no log of a pipeline run shows an attempt.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

TELEMETRY_OFF: dict[str, str] = {
    # The cross-tool convention (consoledonottrack.com); cosmos honours it.
    "DO_NOT_TRACK": "1",
    # cosmos' own switch (Airflow config [cosmos] enable_telemetry) and Scarf's.
    "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
    "SCARF_NO_ANALYTICS": "true",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    "GX_ANALYTICS_ENABLED": "False",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}


def switch_off(environ: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Apply ``TELEMETRY_OFF`` to ``environ`` (this process's environment by default) and return it."""
    env = os.environ if environ is None else environ
    env.update(TELEMETRY_OFF)
    return env
