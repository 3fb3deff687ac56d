"""The operator console: the gateway's web pages and API for the fleet, its alerts and metrics."""
