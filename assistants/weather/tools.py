"""Tools of the weather assistant: deterministic, offline, safe to run anywhere.

Each function becomes a tool named ``weather.<function name>``; its schema
comes from the type hints and the docstring. Replace the fake forecast with a
call to your weather provider.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zoneinfo
from typing import Literal

import attrs

from assistant_service.adapters.tools import tool

_SKIES = ("sunny", "partly cloudy", "cloudy", "light rain", "windy")


@attrs.frozen
class DayForecast:
    """One day of a forecast."""

    day: int
    sky: str
    high_c: int
    low_c: int


@tool
def get_forecast(city: str, days: int = 1) -> list[DayForecast]:
    """Get the weather forecast for a city.

    Args:
        city: The city name, e.g. "Lisbon".
        days: How many days to forecast, 1 to 7.
    """
    days = max(1, min(days, 7))
    seed = hashlib.sha256(city.strip().lower().encode()).digest()
    forecast = []
    for day in range(days):
        b = seed[day * 3 : day * 3 + 3]
        high = 10 + b[0] % 20
        forecast.append(
            DayForecast(day=day + 1, sky=_SKIES[b[1] % 5], high_c=high, low_c=high - 3 - b[2] % 8)
        )
    return forecast


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
