"""The HTTP and WebSocket edge: a Quart app over the AssistantService."""
