"""The state adapters import without their extras; building a store without one says which."""

from __future__ import annotations

import subprocess
import sys


def test_the_state_modules_import_without_redis_or_google():
    script = (
        "import sys\n"
        "for name in ('redis', 'google'): sys.modules[name] = None\n"
        "import anyio\n"
        "import assistant_service.adapters.state\n"
        "import assistant_service.adapters.state.firestore\n"
        "import assistant_service.adapters.state.redis\n"
        "from assistant_service.adapters.state.memory import InMemoryStateStore\n"
        "from assistant_service.adapters.state.firestore import FirestoreStateStore\n"
        "from assistant_service.adapters.state.redis import RedisStateStore\n"
        "from assistant_service.domain.errors import ConfigurationError\n"
        "async def main():\n"
        "    store = InMemoryStateStore()\n"
        "    lease = await store.acquire('conv_1', 'run-1', 5)\n"
        "    print(lease.token)\n"
        "    for build in (\n"
        "        lambda: RedisStateStore.from_url('redis://127.0.0.1:1'),\n"
        "        lambda: FirestoreStateStore.from_environment('p'),\n"
        "    ):\n"
        "        try:\n"
        "            build()\n"
        "        except ConfigurationError as error:\n"
        "            print(error.message.split(': ')[-1])\n"
        "anyio.run(main)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "1",
        "pip install 'assistant-service[redis]'",
        "pip install 'assistant-service[firestore]'",
    ]
