"""The kiosk: the cart's touch-screen page and the local HTTP server that feeds it.

``contract`` — the HTTP API the page and the agent agree on (``KioskSource``, bodies, answers);
``server`` — ``KioskServer``: the route table, start/stop, the pump that pushes each new screen;
``handler`` — one request: static files, body checks, the event stream; ``static/`` — the page.
"""
