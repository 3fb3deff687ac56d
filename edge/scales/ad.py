"""A&D balances and indicators, and the Chinese ST,GS clones (reference §5.1-5.2): not implemented yet (issue 4)."""
