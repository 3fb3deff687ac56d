"""OHAUS, indicator side: not implemented yet (issue 4)."""
