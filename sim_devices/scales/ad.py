"""A&D and ST,GS clones, indicator side: not implemented yet (issue 4)."""
