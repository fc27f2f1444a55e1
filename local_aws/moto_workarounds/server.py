"""moto's server in this process, with the workarounds applied, for other processes to call."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Final

from moto.core.config import DefaultConfig, default_user_config

from local_aws.moto_workarounds import lambda_runtime
from local_aws.moto_workarounds.activities import AWS_ACTIVITY_POLL_SECONDS
from local_aws.moto_workarounds.patches import apply_moto_workarounds

# The mock_aws config under which the workarounds apply: the real interpreter, Lambda without
# Docker (the local Lambda runtime replaces the container).
MOTO_CONFIG: Final[DefaultConfig] = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}


@dataclass(frozen=True)
class LocalMotoServer:
    """A moto server running in this process's threads, with the workarounds applied.

    ``stop()`` also restores the process-wide moto settings the server changed, so mock_aws users
    later in the same process (tests) get moto's defaults back, e.g. executions that do not run.
    """

    server: Any
    endpoint_url: str
    previous_settings: dict[str, Any] = field(default_factory=dict)
    previous_moto_port: str | None = None

    def stop(self) -> None:
        self.server.stop()
        for key, value in self.previous_settings.items():
            if value is None:
                default_user_config.pop(key, None)  # type: ignore[misc]
            else:
                default_user_config[key] = value  # type: ignore[literal-required]
        if self.previous_moto_port is None:
            os.environ.pop("MOTO_PORT", None)
        else:
            os.environ["MOTO_PORT"] = self.previous_moto_port


def start_moto_server(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    activity_poll_seconds: float = AWS_ACTIVITY_POLL_SECONDS,
) -> LocalMotoServer:
    """Start moto's ThreadedMotoServer (port 0: a free one) for other processes to call.

    The server's backends are this process's, so registered Lambda handlers run here.
    """
    from moto.server import ThreadedMotoServer  # imported late: it pulls in flask

    apply_moto_workarounds(activity_poll_seconds=activity_poll_seconds)
    previous_settings = {key: default_user_config.get(key) for key in ("stepfunctions", "lambda")}
    previous_moto_port = os.environ.get("MOTO_PORT")
    # New dicts (not in-place updates), so that a caller's patch.dict restores them.
    default_user_config["stepfunctions"] = {
        **default_user_config.get("stepfunctions", {}),
        **MOTO_CONFIG["stepfunctions"],
    }
    default_user_config["lambda"] = {
        **default_user_config.get("lambda", {}),
        **MOTO_CONFIG["lambda"],
    }
    # The Lambda runtime's fork server imports its libraries while the stack deploys.
    lambda_runtime.start_in_background()
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    # moto's interpreter reaches Lambda through http://localhost:$MOTO_PORT when it is not
    # inside mock_aws.
    os.environ["MOTO_PORT"] = str(bound_port)
    return LocalMotoServer(
        server=server,
        endpoint_url=f"http://{bound_host}:{bound_port}",
        previous_settings=previous_settings,
        previous_moto_port=previous_moto_port,
    )
