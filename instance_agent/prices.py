"""On-demand prices of the supported GPU types and the cost estimate of one run.

The table lives in the agent's package because the agent ships it (``make build`` copies every
module) and writes each run's cost into ``run.json``; ``python -m gpurun`` reads the same table.

Prices are USD, Linux, shared tenancy, on-demand, as listed on the public AWS price pages named
in ``SOURCES`` on ``PRICES_AS_OF``. AWS changes prices without notice: check the pages before a
budget decision and update this table (and its date) when they move. A type or region missing
here gets no estimate rather than a wrong one.

Cost of a run = instance lifetime x hourly price
              + root volume GiB x gp3 price per GiB-month x lifetime / 730 h
              + S3 GET and PUT requests x their price per 1,000.
S3 -> EC2 transfer in the same region is free, so the model copy itself costs only its requests.
"""

from __future__ import annotations

import dataclasses
import math

PRICES_AS_OF = "2025-06-01"
SOURCES = (
    "https://aws.amazon.com/ec2/pricing/on-demand/",
    "https://aws.amazon.com/s3/pricing/",
    "https://aws.amazon.com/ebs/pricing/",
)
HOURS_PER_MONTH = 730  # AWS's own convention for monthly prices

_G_FAMILY_US = {
    "g4dn.xlarge": 0.526,
    "g4dn.2xlarge": 0.752,
    "g4dn.4xlarge": 1.204,
    "g4dn.8xlarge": 2.176,
    "g4dn.12xlarge": 3.912,
    "g5.xlarge": 1.006,
    "g5.2xlarge": 1.212,
    "g5.4xlarge": 1.624,
    "g5.8xlarge": 2.448,
    "g5.12xlarge": 5.672,
    "g6.xlarge": 0.8048,
    "g6.2xlarge": 0.9776,
    "g6.4xlarge": 1.3232,
    "g6.8xlarge": 2.0144,
    "g6.12xlarge": 4.6016,
}

# USD per instance-hour, by region, then instance type.
ON_DEMAND_HOURLY: dict[str, dict[str, float]] = {
    "us-east-1": dict(_G_FAMILY_US),
    "us-west-2": dict(_G_FAMILY_US),
    "eu-west-1": {
        "g4dn.xlarge": 0.587,
        "g4dn.2xlarge": 0.838,
        "g4dn.4xlarge": 1.342,
        "g5.xlarge": 1.123,
        "g5.2xlarge": 1.353,
        "g5.4xlarge": 1.813,
    },
    "eu-central-1": {
        "g4dn.xlarge": 0.658,
        "g4dn.2xlarge": 0.94,
        "g4dn.4xlarge": 1.505,
        "g5.xlarge": 1.258,
        "g5.2xlarge": 1.516,
        "g5.4xlarge": 2.031,
    },
}


@dataclasses.dataclass(frozen=True)
class RegionalRates:
    """Per-region prices besides the instance: S3 Standard requests and gp3 storage."""

    s3_get_per_1000: float
    s3_put_per_1000: float
    gp3_per_gib_month: float


REGIONAL_RATES: dict[str, RegionalRates] = {
    "us-east-1": RegionalRates(0.0004, 0.005, 0.08),
    "us-west-2": RegionalRates(0.0004, 0.005, 0.08),
    "eu-west-1": RegionalRates(0.0004, 0.005, 0.088),
    "eu-central-1": RegionalRates(0.00043, 0.0054, 0.0952),
}
# One ranged GET per part: the copy engine never uses parts smaller than this for large files,
# so this bounds the number of GETs from above.
ESTIMATE_PART_BYTES = 8 * 1024 * 1024


class UnknownPriceError(LookupError):
    """The table has no price for this instance type or region."""


def hourly_price(instance_type: str, region: str) -> float:
    """On-demand USD per hour, or UnknownPriceError saying how to add it."""
    by_type = ON_DEMAND_HOURLY.get(region)
    if by_type is None:
        raise UnknownPriceError(
            f"no prices for region {region!r} (known: {', '.join(sorted(ON_DEMAND_HOURLY))}); "
            "add the region to ON_DEMAND_HOURLY and REGIONAL_RATES in instance_agent/prices.py"
        )
    if instance_type not in by_type:
        raise UnknownPriceError(
            f"no price for {instance_type!r} in {region}; add it to ON_DEMAND_HOURLY[{region!r}] "
            "in instance_agent/prices.py from https://aws.amazon.com/ec2/pricing/on-demand/"
        )
    return by_type[instance_type]


def model_copy_get_requests(files: int, total_bytes: int) -> int:
    """An upper bound of the GETs of one model copy: a HEAD-sized request per file plus parts."""
    if files < 0 or total_bytes < 0:
        raise ValueError("files and total_bytes must be >= 0")
    return files + math.ceil(total_bytes / ESTIMATE_PART_BYTES)


@dataclasses.dataclass(frozen=True)
class CostEstimate:
    instance_type: str
    region: str
    lifetime_seconds: float
    hourly_usd: float
    instance_usd: float
    root_volume_usd: float
    s3_requests_usd: float

    @property
    def total_usd(self) -> float:
        return self.instance_usd + self.root_volume_usd + self.s3_requests_usd

    def as_record(self) -> dict[str, object]:
        """The ``cost`` object of run.json."""
        return {
            "total_usd": round(self.total_usd, 4),
            "instance_usd": round(self.instance_usd, 4),
            "root_volume_usd": round(self.root_volume_usd, 4),
            "s3_requests_usd": round(self.s3_requests_usd, 6),
            "hourly_usd": self.hourly_usd,
            "instance_type": self.instance_type,
            "region": self.region,
            "lifetime_seconds": round(self.lifetime_seconds, 1),
            "prices_as_of": PRICES_AS_OF,
        }


def estimate_run_cost(
    instance_type: str,
    region: str,
    lifetime_seconds: float,
    *,
    root_volume_gib: float = 0,
    get_requests: int = 0,
    put_requests: int = 0,
) -> CostEstimate:
    """The on-demand cost of one run; raises UnknownPriceError for a type or region not listed.

    EC2 bills Linux instances per second with a 60-second minimum, so shorter lives count as 60 s.
    """
    if lifetime_seconds < 0:
        raise ValueError(f"lifetime_seconds is {lifetime_seconds}; it must be >= 0")
    if root_volume_gib < 0 or get_requests < 0 or put_requests < 0:
        raise ValueError("root_volume_gib, get_requests and put_requests must be >= 0")
    hourly = hourly_price(instance_type, region)
    rates = REGIONAL_RATES[region]
    hours = max(lifetime_seconds, 60.0) / 3600
    return CostEstimate(
        instance_type=instance_type,
        region=region,
        lifetime_seconds=lifetime_seconds,
        hourly_usd=hourly,
        instance_usd=hours * hourly,
        root_volume_usd=root_volume_gib * rates.gp3_per_gib_month * hours / HOURS_PER_MONTH,
        s3_requests_usd=(
            get_requests * rates.s3_get_per_1000 + put_requests * rates.s3_put_per_1000
        )
        / 1000,
    )
