"""Yaohua XK3190 family, indicator side: not implemented yet (issue 4)."""
