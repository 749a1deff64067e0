"""The legacy Assistants API (threads and runs): private modules, and the remote-assistant sync."""
