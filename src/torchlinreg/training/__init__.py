"""Gradient training: the tutorial's loop, generalised (see :func:`.loop.train`)."""
