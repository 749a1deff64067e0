"""gcp-storage-emulator on 127.0.0.1, in memory, in a thread: a context manager."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from gcp_storage_emulator.server import create_server

from support.servers import require_servers_mark


@contextlib.contextmanager
def storage_emulator(data_dir: Path, *, bucket: str | None = None) -> Iterator[str]:
    """Run the emulator on a free port; yield its URL (for ``STORAGE_EMULATOR_HOST``).

    It keeps objects in memory; ``data_dir`` (a temporary directory) is where
    it would write otherwise, so nothing lands outside it.
    """
    require_servers_mark("gcp-storage-emulator")
    # The emulator logs every request at INFO; the tests need none of it.
    logging.getLogger("gcp_storage_emulator").setLevel(logging.WARNING)
    server = create_server(
        "127.0.0.1", 0, in_memory=True, default_bucket=bucket, data_dir=str(data_dir)
    )
    server.start()
    try:
        host, port = server._api._httpd.server_address[:2]  # port 0 was asked for
        yield f"http://{host}:{port}"
    finally:
        server.stop()
