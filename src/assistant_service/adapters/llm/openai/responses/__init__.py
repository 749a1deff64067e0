"""The Responses API (with the Conversations API, or state kept here): private modules."""
