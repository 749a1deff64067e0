"""Fixtures for the function tool registry: a registry and OpenAI's strict-mode rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from assistant_service.adapters.tools import FunctionToolRegistry
from support.strict_rules import check_strict


@pytest.fixture
def strict_rules() -> Callable[[dict[str, Any]], None]:
    return check_strict


@pytest.fixture
def registry() -> FunctionToolRegistry:
    return FunctionToolRegistry()
