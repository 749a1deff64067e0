"""Route templates for metrics labels: remembered per path, bounded, the same answers."""

from __future__ import annotations

from quart import Quart

from assistant_service.entrypoints.http.observing import UNMATCHED, RouteTemplates


def test_templates_are_the_rules_and_the_remembered_paths_stay_bounded():
    app = Quart(__name__)

    @app.get("/threads/<thread_id>/messages")
    async def messages(thread_id: str) -> str:
        return thread_id

    routes = RouteTemplates(app)

    def of(path: str, method: str = "GET") -> str:
        return routes.of({"type": "http", "method": method, "path": path})

    for n in range(3000):
        assert of(f"/threads/t{n}/messages") == "/threads/<thread_id>/messages"
        assert of(f"/scan/{n}") == UNMATCHED
    assert len(routes._known) <= 1024
    # Asked again (remembered or not), the same answers; the method counts.
    assert of("/threads/t1/messages") == "/threads/<thread_id>/messages"
    assert of("/threads/t1/messages", "DELETE") == UNMATCHED
