"""Mettler Toledo MT-SICS (reference §2): not implemented yet (issue 4)."""
