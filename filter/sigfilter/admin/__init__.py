"""``sigfilter catalog preview --serve``: a live page for people who design signatures.

Imported only by that command (the CLI imports it lazily), so the other commands do not
load Starlette and uvicorn. Rendering goes through the catalog code publish and the
milter use: load → check → compile → the signature service's lookup → the engine.
"""
