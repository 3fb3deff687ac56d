"""The cart's ledger: records committed to SQLite first, then drained to the gateway over MQTT.

Rooms: ``store`` (the Ledger: migrations, the durable commit, acks, purge), ``settings`` (the
``[uplink]`` config model), ``drain`` (the pure drain policy: where from, how much, when),
``trust`` (pure: what a signed ack or command from the gateway may change on this ledger and boot),
``uplink`` (the MQTT I/O carrying that policy out on one worker thread), ``export`` (read-only
listing and CSV/JSON export through sqlite-utils).  Nothing is imported here, so ``edge.config``
may take ``settings`` without paho.
"""
