"""Sorting AWS API errors into what the launcher does about them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from launcher.errors import LauncherTransientError

# RunInstances codes after which another instance type or subnet may succeed. Capacity is per
# type and AZ; Unsupported means the type is not offered in that AZ; a full subnet has no
# addresses left; On-Demand vCPU quotas are per instance family, so another type may still fit.
CAPACITY_ERROR_CODES = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientHostCapacity",
        "InsufficientReservedInstanceCapacity",
        "InsufficientCapacity",
        "InsufficientCapacityOnHost",
        "Unsupported",
        "InsufficientFreeAddressesInSubnet",
        "VcpuLimitExceeded",
        "InstanceLimitExceeded",
    }
)

# Throttling and service-side codes: the same request may succeed a little later.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "Unavailable",
    }
)

_SERVER_ERROR_STATUS = 500


def error_code(error: ClientError) -> str:
    """The AWS error code of a ClientError, or an empty string if the response has none."""
    return str(error.response.get("Error", {}).get("Code", ""))


def is_transient(error: ClientError) -> bool:
    """True for throttling and 5xx answers, which the workflow retries."""
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return error_code(error) in TRANSIENT_ERROR_CODES or status >= _SERVER_ERROR_STATUS


@contextmanager
def transient_errors_raised_as_launcher_errors(operation: str) -> Iterator[None]:
    """Re-raise throttling, 5xx and connection failures as LauncherTransientError.

    botocore has already retried them by then; the workflow's Retry on the class name waits
    longer than a Lambda invocation can.
    """
    try:
        yield
    except ClientError as error:
        if is_transient(error):
            raise LauncherTransientError(
                f"{operation} failed with {error_code(error) or 'a server error'} after the "
                f"SDK's retries: {error}. The workflow retries this error; if it persists, check "
                "the AWS Health Dashboard and the account's API rate limits."
            ) from error
        raise
    except (ConnectionError, HTTPClientError) as error:
        raise LauncherTransientError(
            f"{operation} could not reach AWS: {error}. The workflow retries this error; if it "
            "persists, check the function's network path to the EC2 and Step Functions endpoints."
        ) from error
