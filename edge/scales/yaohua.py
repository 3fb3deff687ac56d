"""Yaohua XK3190 family (reference §4): not implemented yet (issue 4)."""
