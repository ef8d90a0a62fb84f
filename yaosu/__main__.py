"""`python -m yaosu`: the same as the `yaosu` command."""

from yaosu.cli import main

raise SystemExit(main())
