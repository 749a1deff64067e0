"""``python -m assistant_service.entrypoints.cli``: the same as the ``assistant-service`` command."""

import sys

from assistant_service.entrypoints.cli.main import main

sys.exit(main())
