"""Unit factors: the core works in base SI units (bytes, bytes/s, FLOP/s, W, s) and people's units
(GiB, TB/s, TFLOP/s, kW, µs) are converted with these, at the API and in reports only."""

from typing import Final

__all__ = ["GIB", "GIGA", "KILO", "MICRO", "MILLI", "TERA"]

GIB: Final = float(1 << 30)  # bytes in a GiB
KILO: Final = 1e3
GIGA: Final = 1e9
TERA: Final = 1e12
MILLI: Final = 1e-3
MICRO: Final = 1e-6
