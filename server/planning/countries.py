"""IANA time zone -> ISO country code, for the campaign segment "country" (from the widget's zone).

A browser tells us its time zone (``Intl.DateTimeFormat().resolvedOptions().timeZone``), not
its country; each zone of the tz database belongs to one principal country, listed in its
``zone.tab``. That file is read from the system's tz database (the same ``zoneinfo.TZPATH``
Python uses) once per process; where it is missing, a documented subset below stands in
(the main zones of the larger shop markets). A zone in several countries (Europe/Berlin also
covers Norway's and Sweden's clocks since 2014 in ``zone1970.tab``) maps to its principal
country only: that is what a visitor in that zone most likely is.
"""
from __future__ import annotations

import functools
import logging
import os
import zoneinfo

log = logging.getLogger(__name__)

# Used only when no zone.tab is found: zone -> country.
FALLBACK: dict[str, str] = {
    "Europe/Berlin": "DE", "Europe/Vienna": "AT", "Europe/Zurich": "CH", "Europe/Paris": "FR",
    "Europe/London": "GB", "Europe/Dublin": "IE", "Europe/Madrid": "ES", "Europe/Rome": "IT",
    "Europe/Amsterdam": "NL", "Europe/Brussels": "BE", "Europe/Luxembourg": "LU", "Europe/Lisbon": "PT",
    "Europe/Copenhagen": "DK", "Europe/Stockholm": "SE", "Europe/Oslo": "NO", "Europe/Helsinki": "FI",
    "Europe/Warsaw": "PL", "Europe/Prague": "CZ", "Europe/Budapest": "HU", "Europe/Athens": "GR",
    "America/New_York": "US", "America/Chicago": "US", "America/Denver": "US", "America/Phoenix": "US",
    "America/Los_Angeles": "US", "America/Anchorage": "US", "Pacific/Honolulu": "US",
    "America/Toronto": "CA", "America/Vancouver": "CA", "America/Mexico_City": "MX",
    "America/Sao_Paulo": "BR", "Asia/Tokyo": "JP", "Asia/Shanghai": "CN", "Asia/Kolkata": "IN",
    "Asia/Singapore": "SG", "Australia/Sydney": "AU", "Australia/Melbourne": "AU",
    "Pacific/Auckland": "NZ",
}


def _read_zone_tab() -> dict[str, str] | None:
    for directory in zoneinfo.TZPATH:
        path = os.path.join(directory, "zone.tab")
        try:
            with open(path, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except OSError:
            continue
        found: dict[str, str] = {}
        for line in lines:
            if not line or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) >= 3 and len(parts[0]) == 2:
                found[parts[2]] = parts[0].upper()
        if found:
            return found
    return None


@functools.cache
def zone_countries() -> dict[str, str]:
    """Every known zone with its country code (read once)."""
    found = _read_zone_tab()
    if found is None:
        log.warning("no zone.tab in the system's tz database: the country segment knows %d zones only",
                    len(FALLBACK))
        return dict(FALLBACK)
    return found


def zones_of(country: str) -> list[str]:
    """The zones whose principal country is ``country`` (an ISO 3166 alpha-2 code), sorted."""
    code = country.upper()
    return sorted(zone for zone, owner in zone_countries().items() if owner == code)


def known_countries() -> set[str]:
    """Every country code some zone maps to."""
    return set(zone_countries().values())
