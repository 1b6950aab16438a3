"""The one place the version lives (hatch reads it; nothing imports the package root from inside)."""

__version__ = "0.1.0"
