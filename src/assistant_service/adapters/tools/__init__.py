"""Plain Python functions as tools: the function tool-registry adapter."""

from assistant_service.adapters.tools.marker import tool
from assistant_service.adapters.tools.naming import from_wire_name, to_wire_name
from assistant_service.adapters.tools.registry import FunctionToolRegistry

__all__ = ["FunctionToolRegistry", "from_wire_name", "to_wire_name", "tool"]
