"""Chat Completions, for any OpenAI-compatible server: private modules."""
