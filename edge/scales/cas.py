"""CAS (reference §6.1): not implemented yet (issue 4)."""
