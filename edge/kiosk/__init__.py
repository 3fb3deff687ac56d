"""The kiosk: the cart's touch-screen page and the local HTTP server that feeds it.

``contract`` — the HTTP API the page and the agent agree on (``KioskSource``, bodies, answers);
``server`` — ``KioskServer``: the route table, start/stop, the pump that pushes each new screen;
``handler`` — one request: static files, body checks, the event stream; ``guard`` — Host/Origin
allow-lists, body depth, refusal counts; ``connections`` — the accept loop: requests read whole
before a thread, connection cap, deadlines; ``settings`` — ``KioskSettings``; ``static/`` — the page.
"""
