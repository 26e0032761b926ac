"""200 sockets sending one byte a second do not slow a normal /track under the real `turret serve`.

Marker ``load``: left out of ``make test`` (it runs for about a minute and measures time on a shared
machine); run it with ``pytest -m load``. ``python -m bench slowloris`` prints the same figures.
"""

from __future__ import annotations

import pytest

from bench.slowloris import Server, SlowClients, quantile, track_latencies

pytestmark = pytest.mark.load


def test_slow_clients_do_not_delay_track(tmp_path):
    server = Server(tmp_path)
    try:
        track_latencies(server, 20)
        alone = track_latencies(server, 100)
        with SlowClients(server.port) as slow:
            assert slow.connected == 200
            slowed = track_latencies(server, 100)  # every one answered 200 (it raises otherwise)
    finally:
        server.stop()
    # The usual p99 bounds the median under the slow sockets, and their p99 stays within twice it.
    assert quantile(slowed, 0.5) <= quantile(alone, 0.99)
    assert quantile(slowed, 0.99) <= 2 * quantile(alone, 0.99) + 0.05
