"""The launcher Lambda: starts, stops and cleans up the weekly run's GPU instance.

Handler: ``launcher.app.handler``. The event contract: docs/design.md, "The launcher's events".
"""
