"""Writes of the annotations app: `studies` (design and launch), `participation` (taking part)."""
