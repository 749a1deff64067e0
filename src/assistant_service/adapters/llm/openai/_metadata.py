"""OpenAI's metadata objects (on conversations and threads): our key in them, and the API's limits."""

from __future__ import annotations

from collections.abc import Mapping

from assistant_service.domain.errors import InvalidInputError

# The metadata key that names the assistant profile a conversation or thread belongs to.
ASSISTANT_KEY = "assistant_id"
# The API's limits on a metadata object, our key included.
MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512


def tagged_metadata(assistant_id: str, metadata: Mapping[str, str] | None) -> dict[str, str]:
    """The caller's metadata plus our assistant key, checked against the API's limits.

    Raises ``InvalidInputError`` (field ``metadata``) before any call: the server's
    400 would read as an upstream failure.
    """
    tags = {**(metadata or {}), ASSISTANT_KEY: assistant_id}
    problem = None
    if len(tags) > MAX_METADATA_PAIRS:
        problem = f"at most {MAX_METADATA_PAIRS - 1} entries"
    elif any(len(key) > MAX_METADATA_KEY for key in tags):
        problem = f"keys of at most {MAX_METADATA_KEY} characters"
    elif any(len(value) > MAX_METADATA_VALUE for value in tags.values()):
        problem = f"values of at most {MAX_METADATA_VALUE} characters"
    if problem:
        raise InvalidInputError(
            "conversation metadata over the upstream's limits", {"metadata": problem}
        )
    return tags


def metadata_strings(metadata: Mapping[str, object] | object) -> dict[str, str]:
    """The string entries of an upstream ``metadata`` object (it is typed ``object``)."""
    if not isinstance(metadata, Mapping):
        return {}
    return {str(k): v for k, v in metadata.items() if isinstance(v, str)}
