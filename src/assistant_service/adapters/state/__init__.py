"""Conversation history and run state: in memory, on Redis, on Firestore.

``memory`` needs nothing beyond the core; ``redis`` needs the ``[redis]`` extra
and ``firestore`` the ``[firestore]`` one. Each module imports its client library
only when a store is built, so importing this package never needs either.
"""
