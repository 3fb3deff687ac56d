"""OHAUS (reference §5.3): not implemented yet (issue 4)."""
