"""``python -m packviz``: the same as the ``packviz`` console script."""

from packviz.cli import main

raise SystemExit(main())
