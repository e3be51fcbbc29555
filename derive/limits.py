"""Limits on what derive reads and runs, so a claim file from a stranger cannot
make it read gigabytes, hang, or run without end.  Each limit says why it is
the size it is; docs/untrusted-files.md lists them."""

from __future__ import annotations

# A claim file larger than this is refused before it is read.  The largest
# shipped file (bn_backward.toml, every claim of the post) is about 13 KiB;
# 1 MiB leaves room for documents some 75 times longer while keeping a
# mistaken or hostile file (/dev/zero, a log) from being read into memory.
MAX_CLAIM_FILE_BYTES = 1 << 20

# Claims in one file.  The largest shipped document has 28; 256 leaves room for
# a course's whole problem set in one file, while a 1 MiB file of one-line claims
# (some 7,000) is refused before any is checked.  --total-time-limit bounds the
# time of the claims that are allowed.
MAX_CLAIMS_PER_FILE = 256

# A whole run (every claim of every file given) may take this long; past it the
# claims not yet decided are UNDECIDED ("run time budget") and the exit code is
# 3, keeping what was decided.  Verifying every shipped document (15 files) at
# n = 1..8 with --all-n takes about 40 s of one core here; 900 s is some 20
# times that, so a slow machine checking a course's files finishes, while a
# stranger's file of slow claims costs at most 15 minutes instead of hours
# (256 claims of 60 s).  --total-time-limit changes it.
TOTAL_TIME_LIMIT_S = 900

# Braces in a LaTeX field nested deeper than this are refused.  TeX stops at
# 255 grouping levels ("TeX capacity exceeded"), and the report sets each
# formula inside a few groups of its own; the shipped formulas nest at most 3.
MAX_LATEX_GROUP_DEPTH = 100

# latexmk (every pdflatex run of one report) is stopped after this many
# seconds.  The largest shipped report builds from scratch in about 2 s on
# one core; 300 s is generous for a slow machine and a long document, and
# still ends a build that loops.
LATEXMK_TIMEOUT_S = 300

# The time recorded in PDFs (with FORCE_SOURCE_DATE=1, also \today and the
# file dates): a fixed value, so that two builds of a report are the same
# bytes.  0 is 1970-01-01; the report prints no date.
PDF_SOURCE_DATE_EPOCH = 0

# One claim (every n asked for, and its all-n proof) may take this long; past
# it the claim is UNDECIDED ("time limit") and the others still run.  The
# slowest shipped claim (layer norm's double backward gI) takes about 1 s at
# n = 1..8 with --all-n, and seed claims about 3 s at n = 64 (the largest n
# allowed); 60 s leaves a slow machine 20 times that, while a hostile claim
# costs at most a minute.  --time-limit changes it.
CLAIM_TIME_LIMIT_S = 60

# Address space of the process that checks claims.  Verifying every shipped
# document at n = 64 peaks near 0.5 GB; 4 GiB stops a claim that would
# expand to millions of terms long before it takes the machine's 24 GB.
CLAIM_MEMORY_BYTES = 4 << 30

# The largest batch size checked (--n, and the API's n): above it a check takes
# minutes and gigabytes (n = 256 took 166 s and 3 GB); the proofs for all n
# cover every larger n anyway.
MAX_N = 64

# The most seconds a time limit may be set to (--time-limit, --total-time-limit and
# the API's): a day, past which a run is a mistake, not a check.
MAX_LIMIT_S = 24 * 3600
# The most processes a run may start at once (--jobs and the API's jobs): far above
# any machine's cores, while a typo (jobs=10**9) cannot exhaust the process table.
MAX_JOBS = 1024
