"""A minimal loopback stand-in for OpenAI's Assistants endpoints: create, update and list.

``POST /v1/assistants`` creates (``asst_1``, ``asst_2``, ...), ``POST
/v1/assistants/{id}`` updates a known one or answers 404, ``GET /v1/assistants``
lists them all on one page. The fuller fake
OpenAI server lives with the OpenAI adapters; this one serves ``assistants push``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from typing_extensions import Self

from fakegcp._http import LoopbackServer, Request

_ASSISTANT = re.compile(r"/v1/assistants/([A-Za-z0-9_]+)")


class FakeAssistantsApi:
    def __init__(self) -> None:
        self.assistants: dict[str, dict[str, Any]] = {}
        self._server = LoopbackServer(self._handle)

    @property
    def base_url(self) -> str:
        """What ``OPENAI_BASE_URL`` takes."""
        return f"{self._server.url}/v1"

    @property
    def requests(self) -> list[Request]:
        return self._server.requests

    def _handle(self, request: Request) -> tuple[int, dict[str, Any]]:
        path = request.path.split("?")[0]
        headers = {key.lower(): value for key, value in request.headers.items()}
        if headers.get("authorization") != "Bearer sk-test":
            return 401, {"error": {"message": "Incorrect API key", "type": "invalid_request_error"}}
        body = json.loads(request.body or b"{}")
        match = _ASSISTANT.fullmatch(path)
        if request.method == "GET" and path == "/v1/assistants":
            listed = list(self.assistants.values())[::-1]
            return 200, {
                "object": "list",
                "data": listed,
                "first_id": listed[0]["id"] if listed else None,
                "last_id": listed[-1]["id"] if listed else None,
                "has_more": False,
            }
        if request.method == "POST" and path == "/v1/assistants":
            assistant_id = f"asst_{len(self.assistants) + 1}"
        elif request.method == "POST" and match and match.group(1) in self.assistants:
            assistant_id = match.group(1)
        else:
            return 404, {
                "error": {
                    "message": f"No assistant found at {path}",
                    "type": "invalid_request_error",
                }
            }
        self.assistants[assistant_id] = {
            **self.assistants.get(assistant_id, {}),
            **body,
            "id": assistant_id,
            "object": "assistant",
            "created_at": 1_700_000_000,
        }
        return 200, self.assistants[assistant_id]

    def __enter__(self) -> Self:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)
