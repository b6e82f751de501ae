"""What environments cost and whether they are sound: size, last use, health, cleanup.

Domain logic only (files in, typed results out); the service calls it off the event loop.
"""
