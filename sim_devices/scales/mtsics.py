"""Mettler Toledo MT-SICS, indicator side: not implemented yet (issue 4)."""
