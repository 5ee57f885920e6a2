"""Allows ``python -m teachraft``."""

from teachraft.cli import main

raise SystemExit(main())
