"""The contracts between the parts of a weekly run, defined once (docs/design.md).

The launcher (this directory ships in its Lambda package), the instance agent (``make build``
vendors it into the agent artifact) and ``gpurun`` import these names instead of writing them
out. Standard library only, Python 3.10+: it runs on the instance's own python3 at boot.
"""
