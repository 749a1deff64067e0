"""Demo tools for the offline demo and first runs: deterministic, no network.

Registered by the ``demo`` entry point as ``demo.get_forecast``,
``demo.add`` and ``demo.current_time``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zoneinfo
from typing import Annotated

import attrs

from assistant_service.adapters.tools.marker import tool

_SKIES = ("sunny", "partly cloudy", "cloudy", "light rain", "windy")


@attrs.frozen
class DayForecast:
    """One day of a fake forecast."""

    day: int
    sky: str
    high_c: int
    low_c: int


@tool
def get_forecast(city: str, days: int = 1) -> list[DayForecast]:
    """Get the weather forecast for a city (fake, but the same for the same input).

    Args:
        city: The city name, e.g. "Lisbon".
        days: How many days to forecast, 1 to 7.
    """
    return fake_forecast(city, days)


def fake_forecast(city: str, days: int) -> list[DayForecast]:
    """A made-up forecast of 1 to 7 days, the same for the same city: demos need no network."""
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
def add(
    a: Annotated[float, "The first number."], b: Annotated[float, "The second number."]
) -> float:
    """Add two numbers."""
    return a + b


@tool
def current_time(timezone: str = "UTC") -> str:
    """Get the current date and time in a time zone.

    Args:
        timezone: An IANA time zone name, e.g. "Europe/Paris".
    """
    try:
        zone = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {timezone!r}"
    return dt.datetime.now(zone).isoformat(timespec="seconds")
