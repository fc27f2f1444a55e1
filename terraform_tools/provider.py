"""An offline stand-in for a Terraform provider: the real schema, and nothing that reaches AWS.

Terraform starts it as `terraform-provider-<name>` (see terraform_tools/offline.py) over the
go-plugin handshake and talks tfplugin6 to it, as to a release provider. It serves the schema
generated from the CDKTF assembly (terraform_tools/provider_schema.py), so `terraform validate`
checks references, types, nesting and required arguments against hashicorp/aws 6.25.0 and
hashicorp/archive 2.7.1, and `terraform test` can mock it (`mock_provider`). Every call that
would need the cloud (plan, apply, read, import) is refused with an error diagnostic.

Usage (by Terraform): `python -m terraform_tools.provider hashicorp/aws`.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from terraform_tools.provider_schema import cached_schema_response, package_for
from terraform_tools.schema import REPO_ROOT

SCHEMA_CACHE = REPO_ROOT / ".cache" / "terraform" / "schemas"
REFUSAL = (
    "the offline provider stand-in only serves the schema: use mock_provider in "
    "terraform test, or a real provider to plan or apply"
)


def _servicer(load_schema: Callable[[], bytes]) -> Any:
    from tf.gen import tfplugin_pb2 as pb
    from tf.gen import tfplugin_pb2_grpc as rpc

    def refused() -> list[Any]:
        return [pb.Diagnostic(severity=pb.Diagnostic.ERROR, summary=REFUSAL)]

    class StandIn(rpc.ProviderServicer):  # type: ignore[misc]
        def GetMetadata(self, request: Any, context: Any) -> Any:
            return pb.GetMetadata.Response(
                server_capabilities=pb.ServerCapabilities(get_provider_schema_optional=True)
            )

        def GetProviderSchema(self, request: Any, context: Any) -> Any:
            return pb.GetProviderSchema.Response.FromString(load_schema())

        def ValidateProviderConfig(self, request: Any, context: Any) -> Any:
            return pb.ValidateProviderConfig.Response()

        def ValidateResourceConfig(self, request: Any, context: Any) -> Any:
            return pb.ValidateResourceConfig.Response()

        def ValidateDataResourceConfig(self, request: Any, context: Any) -> Any:
            return pb.ValidateDataResourceConfig.Response()

        def ConfigureProvider(self, request: Any, context: Any) -> Any:
            return pb.ConfigureProvider.Response()

        def GetFunctions(self, request: Any, context: Any) -> Any:
            return pb.GetFunctions.Response()

        def StopProvider(self, request: Any, context: Any) -> Any:
            return pb.StopProvider.Response()

        def UpgradeResourceState(self, request: Any, context: Any) -> Any:
            return pb.UpgradeResourceState.Response(diagnostics=refused())

        def ReadResource(self, request: Any, context: Any) -> Any:
            return pb.ReadResource.Response(diagnostics=refused())

        def PlanResourceChange(self, request: Any, context: Any) -> Any:
            return pb.PlanResourceChange.Response(diagnostics=refused())

        def ApplyResourceChange(self, request: Any, context: Any) -> Any:
            return pb.ApplyResourceChange.Response(diagnostics=refused())

        def ImportResourceState(self, request: Any, context: Any) -> Any:
            return pb.ImportResourceState.Response(diagnostics=refused())

        def ReadDataSource(self, request: Any, context: Any) -> Any:
            return pb.ReadDataSource.Response(diagnostics=refused())

    return StandIn()


def serve(source: str) -> None:
    """Serve `source`'s schema over the go-plugin handshake until Terraform is done."""
    import base64
    import tempfile
    from concurrent import futures

    import grpc
    from tf.gen import grpc_controller_pb2 as controller_pb
    from tf.gen import grpc_controller_pb2_grpc as controller_rpc
    from tf.gen import grpc_stdio_pb2_grpc as stdio_rpc
    from tf.gen import tfplugin_pb2_grpc as rpc
    from tf.runner import _self_signed_cert

    # Read on the first GetProviderSchema, after the handshake: go-plugin gives a provider one
    # minute to start, and building the schema (a fresh cache, a loaded machine) can take longer.
    # tf_offline.install builds the cache before Terraform runs; this is the second line.
    schema = functools.cache(lambda: cached_schema_response(package_for(source), SCHEMA_CACHE))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    rpc.add_ProviderServicer_to_server(_servicer(schema), server)

    class Controller(controller_rpc.GRPCControllerServicer):  # type: ignore[misc]
        def Shutdown(self, request: Any, context: Any) -> Any:
            server.stop(grace=0.2)
            return controller_pb.Empty()

    class Stdio(stdio_rpc.GRPCStdioServicer):  # type: ignore[misc]
        def StreamStdio(self, request: Any, context: Any) -> Any:
            return iter(())  # nothing to forward: the stand-in writes to stderr only

    controller_rpc.add_GRPCControllerServicer_to_server(Controller(), server)
    stdio_rpc.add_GRPCStdioServicer_to_server(Stdio(), server)
    with tempfile.TemporaryDirectory(prefix="tf-provider-") as tmp:
        socket = str(Path(tmp) / "plugin.sock")
        # go-plugin's AutoMTLS: Terraform trusts the certificate printed in the handshake.
        chain, credentials = _self_signed_cert()
        server.add_secure_port(f"unix://{socket}", credentials)
        server.start()
        certificate = base64.b64encode(chain).decode().rstrip("=")
        print(f"1|6|unix|{socket}|grpc|{certificate}", flush=True)
        # go-plugin stops us with Shutdown; a Terraform killed before it could (a closed
        # pipe, Ctrl-C) leaves us orphaned instead, so also stop when the parent is gone.
        parent = os.getppid()
        while server.wait_for_termination(timeout=0.5):  # True: timed out, still serving
            if os.getppid() != parent:
                server.stop(grace=0)
                break


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 1:
        print("usage: python -m terraform_tools.provider <namespace/name>", file=sys.stderr)
        return 2
    serve(arguments[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
