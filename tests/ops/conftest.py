"""Fixtures shared by the operations tests: the agent tests' configuration and fake world."""

from __future__ import annotations

from tests.agent.conftest import base_config
from tests.agent.test_agent import world

__all__ = ["base_config", "world"]
