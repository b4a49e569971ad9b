"""How reconciliation jobs are run: leases, heartbeats, attempts, sweeps (docs/reconciliation-jobs.md).

The operator sets these through the environment (`reckai.settings` reads them into this type);
the use cases only see this value object.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReconciliationSettings:
    # docs/reconciliation-jobs.md: a worker holds a job through a lease it renews every heartbeat;
    # the sweeper takes back jobs whose lease expired (dead worker) up to max_attempts times.
    lease_seconds: int = 60
    heartbeat_seconds: float = 2.0  # also how often a running job notices a cancel
    max_attempts: int = 3
    sweep_interval_seconds: int = 30
    pending_resend_seconds: int = 900  # a job pending this long gets its message sent again
