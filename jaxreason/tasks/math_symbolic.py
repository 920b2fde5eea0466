"""Symbolic answer equivalence with math-verify, only ever inside a grading worker process.

math-verify parses LaTeX with latex2sympy (an ANTLR grammar that builds SymPy objects; it does
not `eval` Python), then compares numerically, symbolically (`simplify`), and as sets,
intervals, tuples, matrices and relations. It can still hang (`9^{9^{9^9}}`, huge
simplifications) and its SIGALRM timeouts only work on a process's main thread, so in the
training process `symbolic_equal` ships the comparison to a worker with a deadline; inside a
worker (e.g. under `grade_batch`) it runs directly and the pool's deadline covers it.

We use math-verify's LaTeX extraction only. Its `ExprExtractionConfig` path calls SymPy's
`parse_expr`, which evaluates Python, and must never see model text.
"""

from __future__ import annotations

from jaxreason.tasks import grading_pool


def math_verify_equal(gold: str, pred: str, timeout_s: float) -> bool:
    """Whether math-verify judges the LaTeX answers equal. Call only in a worker process.

    math-verify's own (SIGALRM) limits get a third of `timeout_s` per stage (parse gold,
    parse prediction, verify), so that it usually gives up by itself before the pool's
    deadline kills the worker (a restart costs about half a second).
    """
    from math_verify import LatexExtractionConfig, parse, verify

    config = [LatexExtractionConfig(boxed_match_priority=0)]
    stage_timeout_s = max(1, int(timeout_s / 3))
    gold_parsed = parse("\\boxed{" + gold + "}", extraction_config=config, parsing_timeout=stage_timeout_s)
    pred_parsed = parse("\\boxed{" + pred + "}", extraction_config=config, parsing_timeout=stage_timeout_s)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=stage_timeout_s))


def symbolic_equal(gold: str, pred: str, timeout_s: float) -> tuple[bool, str]:
    """(equal, reason). Runs math-verify here if in a worker, else in a worker with a deadline.

    A timeout or a crashed worker counts as not equal (reason "symbolic_timeout" /
    "symbolic_failed: ...").
    """
    if grading_pool.in_worker():
        try:
            equal = math_verify_equal(gold, pred, timeout_s)
        except Exception as error:  # math-verify raises on some malformed input
            return False, f"symbolic_failed: {type(error).__name__}"
        return equal, "symbolic_match" if equal else "wrong_answer"
    result = grading_pool.run_with_timeout(math_verify_equal, (gold, pred, timeout_s), timeout_s)
    if isinstance(result, grading_pool.JobFailure):
        if result.reason == "timeout":
            return False, "symbolic_timeout"
        return False, f"symbolic_failed: {result.reason}"[:200]
    return bool(result), "symbolic_match" if result else "wrong_answer"


def _pairs_equal_here(pairs: list[tuple[str, str]], timeout_s: float) -> list[bool]:
    results = []
    for gold, pred in pairs:
        try:
            results.append(bool(math_verify_equal(gold, pred, timeout_s)))
        except Exception:  # math-verify raises on some malformed input
            results.append(False)
    return results


def symbolic_pairs(pairs: list[tuple[str, str]], timeout_s: float) -> tuple[list[bool] | None, str]:
    """math-verify on several (gold, pred) item pairs in one worker call (multi-part answers).

    Returns (verdicts, "") or (None, reason) when the worker timed out or failed; the deadline
    is `timeout_s` per pair, at most four pairs' worth.
    """
    if grading_pool.in_worker():
        return _pairs_equal_here(pairs, timeout_s), ""
    deadline = timeout_s * min(len(pairs), 4)
    result = grading_pool.run_with_timeout(_pairs_equal_here, (pairs, timeout_s), deadline)
    if isinstance(result, grading_pool.JobFailure):
        return None, "symbolic_timeout" if result.reason == "timeout" else f"symbolic_failed: {result.reason}"[:200]
    return list(result), ""
