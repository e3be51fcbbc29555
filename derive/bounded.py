"""Verifying documents under limits that really stop SymPy, several at once.

Each document is checked in a child process (forked, so nothing is imported
again) with a cap on its address space.  It sends each claim's result as soon
as it has it; a claim that takes longer than the time limit, or that exhausts
the memory, ends the child: that claim is UNDECIDED with the reason, and a
fresh child goes on with the claims after it.  A signal inside the process
could not interrupt a long operation in C (a huge integer power); killing the
process always works.

Up to ``jobs`` children run at once.  Results come back in input order, and
what a child computes does not depend on what runs beside it, so the verdicts
are the same for any ``jobs``.  A document with fewer documents than jobs
beside it is split by n: each part checks every claim at some of the n (the
all-n proofs, normal forms and closed form in the first part), and the parts'
verdicts are put back together in n order.

The whole run is bounded too (``total_time_limit``): past it the children are
stopped and every claim not yet decided is UNDECIDED with the reason, keeping
everything decided before.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import pickle
import resource
import time
from multiprocessing.connection import wait

from .cache import Cache, dumps
from .cache import key as cache_key
from .claims import Document
from .limits import CLAIM_MEMORY_BYTES, CLAIM_TIME_LIMIT_S
from .results import UNDECIDED, AllNStep, ClaimResult, DocumentResult, NVerdict
from .verify import DEFAULT_NS, VerifierError, verify_claims

# The reason given to every claim left when the run's budget is spent.
BUDGET_REASON = "run time budget: more than {:g} s for the whole run (--total-time-limit)"


def _address_space() -> int:
    """This process's current virtual size in bytes (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _send(conn, message) -> None:
    # Pickled as trees (cache.dumps): SymPy's own pickles rebuild each Add and Mul
    # by evaluating it again, and unpickling results was most of the parent's time.
    conn.send_bytes(dumps(message))


def _child(conn, document: Document, ns, options: dict, memory: int, closed_form: bool) -> None:
    # The cap is on top of what the fork already maps (imported libraries).
    limit = _address_space() + memory
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        for result in verify_claims(document, ns, **options):
            _send(conn, ("claim", result))
        if closed_form:
            from .derivation import DerivationError, derive_closed_form

            try:
                _send(conn, ("derivation", derive_closed_form(document)))
            except DerivationError as exc:
                _send(conn, ("derivation", str(exc)))
        _send(conn, ("done", None))
    except VerifierError as exc:
        _send(conn, ("error", str(exc)))
    except MemoryError:
        _send(conn, ("memory", None))
    except RecursionError:
        _send(conn, ("crash", "the expression is nested too deeply to process"))
    except Exception as exc:  # a bug must not pass for a verdict: the claim is undecided
        _send(conn, ("crash", f"internal error: {type(exc).__name__}: {exc}"))
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


@dataclasses.dataclass
class _Part:
    """One child's share of a document: some of its claims at some of the n."""

    index: int  # the document's position in the input
    document: Document
    ns: tuple[int, ...]
    options: dict
    closed_form: bool  # also derive the document's closed form, after its claims
    positions: tuple[int, ...] = ()  # which of the document's claims, in order
    todo: list = dataclasses.field(default_factory=list)
    done: list = dataclasses.field(default_factory=list)
    derivation: object = None  # a derivation.Derivation, or why there is none
    error: str | None = None  # a VerifierError: the document is malformed
    limited: bool = False  # some verdict was set by a limit, not by the check
    child: object = None
    conn: object = None
    deadline: float = 0.0

    def __post_init__(self):
        self.todo = [self.document.claims[k] for k in self.positions]
        self.closed_form = self.closed_form and bool(self.document.closed_form)

    @property
    def finished(self) -> bool:
        return self.error is not None or (not self.todo and not self.closed_form)

    def give_up(self, reason: str) -> None:
        """The next item (a claim, else the closed form) is undecided, for reason."""
        self.limited = True
        if self.todo:
            claim = self.todo.pop(0)
            self.done.append(_undecided(claim, self.ns, self.options.get("all_n"), reason))
        elif self.closed_form:
            self.closed_form, self.derivation = False, f"closed form: {reason}"


def split_ns(ns, parts: int) -> list[tuple[int, ...]]:
    """ns in at most ``parts`` groups of about equal cost (a check at n costs about n²)."""
    return _balance(ns, parts, lambda n: n * n)


def split_claims(claims, parts: int) -> list[tuple[int, ...]]:
    """The claims' positions in at most ``parts`` groups of about equal cost (the
    length of a claim's sides stands for it), each group in document order."""
    costs = [sum(len(t) for t in _texts(c)) for c in claims]
    return _balance(range(len(claims)), parts, costs.__getitem__)


def _balance(items, parts: int, cost) -> list[tuple]:
    items = list(items)
    groups: list[list] = [[] for _ in range(max(1, min(parts, len(items))))]
    loads = [0] * len(groups)
    for item in sorted(items, key=lambda v: (-cost(v), v)):
        k = loads.index(min(loads))
        groups[k].append(item)
        loads[k] += cost(item)
    return [tuple(sorted(g)) for g in groups]


class _Run:
    def __init__(self, parts, jobs, time_limit, memory, total_time_limit):
        self.waiting = list(parts)
        self.running: list[_Part] = []
        self.jobs = jobs
        self.time_limit = time_limit
        self.memory = memory
        self.end = None if total_time_limit is None else time.monotonic() + total_time_limit
        self.total_time_limit = total_time_limit
        self.context = multiprocessing.get_context("fork")

    def start(self, part: _Part) -> None:
        remaining = dataclasses.replace(part.document, claims=tuple(part.todo))
        receive, send = self.context.Pipe(duplex=False)
        args = (send, remaining, part.ns, part.options, self.memory, part.closed_form)
        part.child = self.context.Process(target=_child, args=args)
        part.child.start()
        send.close()
        part.conn = receive
        part.deadline = time.monotonic() + self.time_limit

    def stop(self, part: _Part, reason: str | None) -> None:
        """End the part's child; the item it was on gets ``reason`` (None: it finished)."""
        if part.child.is_alive():
            part.child.kill()
        part.child.join()
        part.conn.close()
        self.running.remove(part)
        if reason is None or part.finished:
            return
        part.give_up(reason)
        if not part.finished:
            self.waiting.insert(0, part)

    def receive(self, part: _Part) -> None:
        try:
            kind, payload = pickle.loads(part.conn.recv_bytes())
        except EOFError:
            self.stop(part, "the check stopped (out of memory, or killed)")
            return
        part.deadline = time.monotonic() + self.time_limit
        if kind == "claim":
            part.done.append(payload)
            part.todo.pop(0)
        elif kind == "derivation":
            part.closed_form, part.derivation = False, payload
        elif kind == "error":
            part.error = payload
            self.stop(part, None)
        elif kind == "memory":
            self.stop(part, f"memory limit: more than {self.memory >> 20} MiB")
        elif kind == "crash":
            self.stop(part, payload)
        else:  # "done"
            self.stop(part, None)

    def run(self) -> None:
        try:
            while self.waiting or self.running:
                now = time.monotonic()
                if self.end is not None and now >= self.end:
                    self.out_of_budget()
                    return
                while self.waiting and len(self.running) < self.jobs:
                    part = self.waiting.pop(0)
                    self.running.append(part)
                    self.start(part)
                deadlines = [p.deadline for p in self.running]
                if self.end is not None:
                    deadlines.append(self.end)
                ready = wait([p.conn for p in self.running], max(0.0, min(deadlines) - now))
                for part in list(self.running):
                    if part.conn in ready:
                        self.receive(part)
                now = time.monotonic()
                for part in list(self.running):
                    if part.deadline <= now and part.conn not in ready:
                        self.stop(part, f"time limit: more than {self.time_limit:g} s")
        finally:
            for part in list(self.running):  # an interrupt: no child outlives the run
                self.stop(part, None)

    def out_of_budget(self) -> None:
        reason = BUDGET_REASON.format(self.total_time_limit)
        for part in list(self.running):
            self.stop(part, None)
            self.waiting.append(part)
        for part in self.waiting:
            while not part.finished:
                part.give_up(reason)
        self.waiting = []


def _merge(document: Document, ns, all_n: bool, parts: list[_Part]) -> DocumentResult:
    """One document's result from its parts (by n), or the VerifierError it raised."""
    for part in parts:
        if part.error is not None:
            raise VerifierError(part.error)
    claims = []
    for k, claim in enumerate(document.claims):
        pieces = [p.done[p.positions.index(k)] for p in parts if k in p.positions]
        verdicts = sorted((v for p in pieces for v in p.verdicts), key=lambda v: v.n)
        first = pieces[0]
        claims.append(dataclasses.replace(first, claim=claim, verdicts=tuple(verdicts)))
    return DocumentResult(
        document,
        tuple(ns),
        tuple(claims),
        all_n=all_n,
        derivation=parts[0].derivation,
        limited=any(p.limited for p in parts),
    )


def verify_many(
    documents,
    ns=DEFAULT_NS,
    *,
    jobs: int = 1,
    time_limit: float = CLAIM_TIME_LIMIT_S,
    memory: int = CLAIM_MEMORY_BYTES,
    total_time_limit: float | None = None,
    closed_forms: bool = False,
    cache: Cache | None = None,
    **options,
) -> list[DocumentResult | VerifierError]:
    """Each document's result, in input order (a VerifierError in place of the
    result of a document that cannot be read): as verify.verify_document, with
    each claim bounded in time and memory, up to ``jobs`` documents at once,
    and the whole run bounded by ``total_time_limit`` seconds.

    closed_forms: also derive each document's closed form (DocumentResult.derivation).
    cache: where results are remembered (cache.Cache); a result that a limit
    decided is not stored."""
    documents = list(documents)
    ns = tuple(ns)
    all_n = bool(options.get("all_n"))
    jobs = max(1, int(jobs))
    keys = [
        result_key(doc, ns, options, closed_forms) if cache and doc.digest else None
        for doc in documents
    ]
    cached = [cache.get(k) if k else None for k in keys]
    todo = [doc for doc, hit in zip(documents, cached, strict=True) if hit is None]
    split = max(1, jobs // max(1, len(todo)))
    by_document: list[list[_Part]] = []
    for index, doc in enumerate(documents):
        if cached[index] is not None:
            by_document.append([])
            continue
        groups = split_ns(ns, split) if ns else [()]
        # Jobs left over once the n are shared out share the claims: the seed file at one n.
        shares = split_claims(doc.claims, split // len(groups)) if doc.claims else [()]
        parts = []
        for k, group in enumerate(groups):
            # The all-n proofs and the normal forms once per claim, in the parts of
            # the first group of n; the closed form once, in the first part.
            extra = {} if k == 0 else {"all_n": False, "normal_forms": False}
            for c, share in enumerate(shares):
                first = closed_forms and k == 0 and c == 0
                parts.append(_Part(index, doc, group, {**options, **extra}, first, share))
        by_document.append(parts)
    # Largest first, so that the last document to start is a short one.
    order = sorted(
        (p for parts in by_document for p in parts),
        key=lambda p: -len(p.ns) * sum(len(s) for c in p.todo for s in _texts(c)),
    )
    _Run(order, jobs, time_limit, memory, total_time_limit).run()
    out: list[DocumentResult | VerifierError] = []
    for doc, parts, hit, k in zip(documents, by_document, cached, keys, strict=True):
        if hit is not None:
            out.append(hit)
            continue
        try:
            result = _merge(doc, ns, all_n, parts)
        except VerifierError as exc:
            out.append(exc)
            continue
        if k is not None and not result.limited:
            cache.put(k, result)
        out.append(result)
    return out


def result_key(document: Document, ns, options: dict, closed_forms: bool) -> str:
    """The cache entry of a document's result: its bytes and path, and every option."""
    return cache_key(
        "result",
        document.digest,
        document.path,
        tuple(ns),
        tuple(sorted(options.items())),
        bool(closed_forms),
    )


def _texts(claim):
    return [t for case in claim.cases for t in case.sides]


def verify_bounded(document: Document, ns=DEFAULT_NS, **kw) -> DocumentResult:
    """verify_many for one document; raises its VerifierError."""
    (result,) = verify_many([document], ns, **kw)
    if isinstance(result, VerifierError):
        raise result
    return result


_TASKS: list = []  # forked_map's thunks, read by the forked workers


def _run_task(k: int):
    try:
        return True, _TASKS[k]()
    except Exception as exc:  # sent back and raised there, in order
        return False, exc


def forked_map(thunks, jobs: int) -> list:
    """[t() for t in thunks], up to ``jobs`` at once in forked workers (so that the
    thunks, closures over results in this process, need no pickling); the first
    exception a thunk raised is raised here.  For trusted work (rendering the
    shipped reports): nothing here is bounded."""
    global _TASKS
    thunks = list(thunks)
    if jobs <= 1 or len(thunks) <= 1:
        return [t() for t in thunks]
    _TASKS = thunks
    try:
        with multiprocessing.get_context("fork").Pool(min(jobs, len(thunks))) as pool:
            outcomes = pool.map(_run_task, range(len(thunks)), chunksize=1)
    finally:
        _TASKS = []
    for ok, value in outcomes:
        if not ok:
            raise value
    return [value for _, value in outcomes]
