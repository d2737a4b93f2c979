"""mailflow: the virtual mesa de partes of a refugee commission."""

__version__ = "0.1.0"
