"""The ``assistant-service`` command line: ``main`` parses, ``serve`` and ``assistants`` add commands."""
