"""A layer's life after its virtualenv exists: planning installs against its base, changes, and revisions.

``plan`` decides what goes into a layer (only what the base lacks), ``resolve`` asks uv or pip for the versions,
``change`` applies a plan atomically, ``revisions`` records each create and change. Nothing here imports the server.
"""
