"""``python -m derive.report [FILE.tex ...]``: build PDFs (default reports/*.tex)."""

from .pdf import main

raise SystemExit(main())
