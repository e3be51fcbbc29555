"""Verifying a document under limits that really stop SymPy.

The claims are checked in a child process (forked, so nothing is imported
again) with a cap on its address space.  It sends each claim's result as soon
as it has it; a claim that takes longer than the time limit, or that exhausts
the memory, ends the child: that claim is UNDECIDED with the reason, and a
fresh child goes on with the claims after it.  A signal inside the process
could not interrupt a long operation in C (a huge integer power); killing the
process always works.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import resource

from .claims import Document
from .limits import CLAIM_MEMORY_BYTES, CLAIM_TIME_LIMIT_S
from .results import UNDECIDED, AllNStep, ClaimResult, DocumentResult, NVerdict
from .verify import DEFAULT_NS, VerifierError, verify_claims


def _address_space() -> int:
    """This process's current virtual size in bytes (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _child(conn, document: Document, ns, options: dict, memory: int) -> None:
    # The cap is on top of what the fork already maps (imported libraries).
    limit = _address_space() + memory
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        for result in verify_claims(document, ns, **options):
            conn.send(("claim", result))
        conn.send(("done", None))
    except VerifierError as exc:
        conn.send(("error", str(exc)))
    except MemoryError:
        conn.send(("memory", None))
    except RecursionError:
        conn.send(("crash", "the expression is nested too deeply to process"))
    except Exception as exc:  # a bug must not pass for a verdict: the claim is undecided
        conn.send(("crash", f"internal error: {type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _undecided(claim, ns, all_n: bool, reason: str) -> ClaimResult:
    verdicts = tuple(NVerdict(n, UNDECIDED, reason) for n in ns)
    proofs = ()
    if all_n:
        proofs = tuple(
            AllNStep(case.label, k + 1, None, reason)
            for case in claim.cases
            for k in range(case.steps)
        )
    return ClaimResult(claim, verdicts, proofs)


def verify_bounded(
    document: Document,
    ns=DEFAULT_NS,
    *,
    time_limit: float = CLAIM_TIME_LIMIT_S,
    memory: int = CLAIM_MEMORY_BYTES,
    **options,
) -> DocumentResult:
    """Like verify.verify_document, with each claim bounded in time and memory."""
    ns = tuple(ns)
    all_n = bool(options.get("all_n"))
    context = multiprocessing.get_context("fork")
    done: list[ClaimResult] = []
    todo = list(document.claims)
    while todo:
        part = dataclasses.replace(document, claims=tuple(todo))
        receive, send = context.Pipe(duplex=False)
        child = context.Process(target=_child, args=(send, part, ns, options, memory))
        child.start()
        send.close()
        stopped = None  # why the child ended early, for the claim it was on
        try:
            while todo:
                if not receive.poll(time_limit):
                    stopped = f"time limit: more than {time_limit:g} s"
                    break
                try:
                    kind, payload = receive.recv()
                except EOFError:
                    stopped = "the check stopped (out of memory, or killed)"
                    break
                if kind == "claim":
                    done.append(payload)
                    todo.pop(0)
                elif kind == "error":
                    raise VerifierError(payload)
                elif kind == "memory":
                    stopped = f"memory limit: more than {memory >> 20} MiB"
                    break
                elif kind == "crash":
                    stopped = payload
                    break
                else:  # "done"
                    break
        finally:
            if child.is_alive():
                child.kill()
            child.join()
            receive.close()
        if stopped is not None and todo:
            done.append(_undecided(todo.pop(0), ns, all_n, stopped))
    return DocumentResult(document, ns, tuple(done), all_n=all_n)
