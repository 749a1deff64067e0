"""The pure domain: conversations, runs and tool invocations. Imports stdlib, attrs and anyio only."""
