"""`simulsa serve`: the WebSocket server (protocol.py: the v1 protocol; app.py: the ASGI app; run.py: uvicorn).

Needs the `[serve]` extra (starlette, uvicorn, websockets); the rest of the runtime does not.
"""
