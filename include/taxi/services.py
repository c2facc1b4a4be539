"""The TLC's trip services, as a type: a ``Service`` is one of four, never any string.

A ``StrEnum``: its value is the name every target uses (``yellow`` in table, object and
file names), so it prints, formats and compares as that text. The zone lookup is not a
service: it has no months and its own paths in every target.
"""

from __future__ import annotations

from enum import StrEnum


class Service(StrEnum):
    YELLOW = "yellow"
    GREEN = "green"
    FHV = "fhv"
    FHVHV = "fhvhv"

    @classmethod
    def parse(cls, value: object) -> Service:
        """The service named ``value``; a ValueError that lists the services otherwise."""
        if isinstance(value, str) and value in cls._value2member_map_:
            return cls(value)
        raise ValueError(f"service {value!r} is not one of {', '.join(cls)}")
