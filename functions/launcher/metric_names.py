"""The launcher's CloudWatch metrics: Counts in POWERTOOLS_METRICS_NAMESPACE, dimension
``service`` = POWERTOOLS_SERVICE_NAME. terraform/modules/monitoring charts them on the dashboard
and alarms on INSTANCES_PAST_LIFETIME (tests/contracts/test_dashboard_metrics.py pins both).
Besides these, a failed invocation counts one under its error's class name (docs/design.md)."""

from __future__ import annotations

CAPACITY_FALLBACKS = "CapacityFallbacks"
INSTANCES_LAUNCHED = "InstancesLaunched"
INSTANCES_REUSED = "InstancesReused"
INSTANCES_TERMINATED = "InstancesTerminated"
INSTANCES_PAST_LIFETIME = "InstancesPastLifetime"
RUN_RECORDS_WRITTEN = "RunRecordsWritten"
RUN_RECORDS_CORRECTED = "RunRecordsCorrected"
RUNS_FAILED_BY_LOST_INSTANCE = "RunsFailedByLostInstance"

COUNTS = frozenset(
    {
        CAPACITY_FALLBACKS,
        INSTANCES_LAUNCHED,
        INSTANCES_REUSED,
        INSTANCES_TERMINATED,
        INSTANCES_PAST_LIFETIME,
        RUN_RECORDS_WRITTEN,
        RUN_RECORDS_CORRECTED,
        RUNS_FAILED_BY_LOST_INSTANCE,
    }
)
