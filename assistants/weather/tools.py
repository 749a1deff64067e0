"""Tools of the weather assistant: deterministic, offline, safe to run anywhere.

Each function becomes a tool named ``weather.<function name>``; its schema
comes from the type hints and the docstring. Replace the fake forecast with a
call to your weather provider.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Literal

from assistant_service.adapters.tools import tool
from assistant_service.adapters.tools.demo import DayForecast, fake_forecast


@tool
def get_forecast(city: str, days: int = 1) -> list[DayForecast]:
    """Get the weather forecast for a city.

    Args:
        city: The city name, e.g. "Lisbon".
        days: How many days to forecast, 1 to 7.
    """
    # The package's made-up forecast; call your weather provider here instead.
    return fake_forecast(city, days)


@tool
def convert_temperature(value: float, to: Literal["celsius", "fahrenheit"]) -> float:
    """Convert a temperature between Celsius and Fahrenheit.

    Args:
        value: The temperature to convert.
        to: The unit to convert to.
    """
    converted = value * 9 / 5 + 32 if to == "fahrenheit" else (value - 32) * 5 / 9
    return round(converted, 1)


@tool
def local_time(timezone: str) -> str:
    """Get the current local date and time in a time zone.

    Args:
        timezone: An IANA time zone name, e.g. "Europe/Lisbon".
    """
    try:
        zone = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {timezone!r}"
    return dt.datetime.now(zone).isoformat(timespec="minutes")
