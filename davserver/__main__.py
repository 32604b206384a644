"""`python -m davserver`: the same as the `davserver` command."""

from .cli import main

raise SystemExit(main())
