"""sladeck: an incident escalation desk for the terminal."""

__version__ = "0.1.0"
