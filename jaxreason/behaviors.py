"""Offline, rule-based counts of four reasoning behaviors in a response.

The cognitive-behaviors study (Gandhi et al. 2025, "Cognitive Behaviors that Enable
Self-Improving Reasoners") measures four behaviors with an LLM judge: verification,
backtracking, subgoal setting and backward chaining. This module is a deterministic stand-in
that needs no model: `count(text, domain)` returns how many instances of each behavior a
response shows, for Countdown traces (`domain="countdown"`, where arithmetic lines are parsed
and the definitions are mechanical) and for math text (`domain="math"`, cue phrases and
structure, including ASTRO's fixed reflection and backtrack sentences). docs/behaviors.md
states the rules and the measured precision and recall against a hand-labelled set.

Safety: the input is arbitrary model text. Everything here is linear in its length: text is
split into clauses with one pass, every pattern is a literal alternation or a bounded window
(no nested or adjacent ambiguous quantifiers), numbers are compared as strings (never converted
to unbounded ints), and the only arithmetic (evaluating a short `<answer>`) is capped in length.
No input makes it raise.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Iterable, Mapping, Sequence

KEYS = ("verification", "backtracking", "subgoal_setting", "backward_chaining")
DOMAINS = ("countdown", "math")

# ASTRO's fixed self-reflection and backtrack sentences. They mirror the template of the ASTRO
# paper (Kim et al. 2025, procedure cloning, section 2.4): when the search jumps back to an
# ancestor step, the trace gets the reflection question, the negative verdict, then the
# backtrack sentence; after a good step it gets the question and the positive verdict. Trace
# renderers must use these constants so that this classifier recognizes what they write.
ASTRO_REFLECTION = "But wait, are we solving the problem correctly so far? Hmm..."
ASTRO_NEGATIVE_VERDICT = "I'm not sure if we're solving the problem correctly so far."
ASTRO_POSITIVE_VERDICT = "Our solution seems to be correct so far."
ASTRO_BACKTRACK = "Let's go back to where we {step}."  # {step}: a short description of the step
ASTRO_RESTART = "Let's restart our solution from the beginning."
ASTRO_PHRASES = (ASTRO_REFLECTION, ASTRO_NEGATIVE_VERDICT, ASTRO_POSITIVE_VERDICT,
                 ASTRO_BACKTRACK, ASTRO_RESTART)

# Numbers longer than this are not compared or evaluated (they are not Countdown values).
_MAX_DIGITS = 12
# Longest <answer> expression evaluated to infer the Countdown target.
_MAX_ANSWER_CHARS = 120

# Clause boundaries: sentence punctuation followed by whitespace, or line breaks.
_SPLIT = re.compile(r"(?<=[.!?;])\s+|\n+")


def _rx(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


# ---------------------------------------------------------------------------------------------
# Cue phrases (matched on lower-cased text with straight apostrophes).

_NOT = r"(?:n't|not)"
_CHECK_VERB = r"(?:double[- ]?check|re-?check|verify|verifying|verification|confirm|sanity check)"
# "check" as an act of checking, not a cheque or "check which numbers we have".
_CHECK_ACT = (r"\bcheck(?:ing)?(?:\s*:|\s+(?:this|that|it|our|my|the (?:answer|result|solution|"
              r"equation|work|sum|total)|by|with|if|whether|again|again:))")

_VERIFY_COMMON = (
    rf"\b{_CHECK_VERB}\b",
    _CHECK_ACT,
    r"^check\b",
    r"✓|✔|≠|!=",
    r"\b(?:that|this|it|which) (?:checks out|works|is (?:right|correct))\b",
    r"\bchecks out\b",
    r"\bas expected\b",
    r"\b(?:that|this|which|it)(?:'s| is) (?:not right|wrong|incorrect)\b",
    r"\bi made an? (?:error|mistake)\b|\bmistake\b",
    r"\bhold on\b",
)

_VERIFY_COUNTDOWN = _rx(
    *_VERIFY_COMMON,
    r"\bnot (?:equal to )?(?:the |our )?(?:target|\d)",
    rf"\bis{_NOT} (?:equal to )?(?:the |our )?(?:target|\d)",
    r"\b(?:which|that|this|it)(?:'s| is| equals| matches| gives(?: us)?) (?:exactly )?(?:the|our) target",
    r"\b(?:equals|matches|reaches|hits|is|reached|get|got) (?:exactly )?(?:the|our) target",
    r"\b\d+ is (?:exactly )?(?:the|our) target|the target!",
    r"\b(?:away|far|short|off) (?:from |of )?(?:the |our )?target|\bshort of\b",
    r"\btoo (?:high|low|big|small|large|much|many|few)\b",
    r"\b(?:close|almost|nearly)\b(?:,| but| to| there)|^(?:almost|close)\b",
    r"\b\d+ (?:short|too (?:many|much|few|little)|more than|less than)\b",
    r"\b(?:that|this|it) works\b|\bworks!|\bperfect\b|\bfound it\b|\bgot it\b|\bthat's it\b",
    r"^(?:yes|correct|right)\b|\byes!",
    r"\bexactly \d",
    r"\bnot it\b|^no\b|, no[.!]?$|\bno wait\b|\bstill not\b|\bnot quite\b",
    r"\b(?:is|are) (?:left|unused|left over|remaining)\b|\bleft over\b|\bremains\b|\bunused\b",
    r"\btwice\b(?!:)|\bused (?:once|exactly once)\b|\ball (?:the )?numbers (?:are )?used\b",
)

_VERIFY_MATH = _rx(
    *_VERIFY_COMMON,
    r"\bsubstitut\w{0,6} [^.;\n]{0,40}?\bback\b|\bplug\w{0,5} [^.;\n]{0,40}?\b(?:back|in|into)\b",
    r"\bwhich (?:matches|agrees|is consistent|satisfies|contradicts)\b|\bis consistent\b",
    r"\b(?:this|it) satisfies\b|\bcontradicts\b",
    r"\bare we [^.;\n?]{0,80}?correct|\bcorrect so far\b|\bam i sure\b",
    r"\bis (?:right|correct)\b|\bthat's right\b|\bindeed\b",
    r", not -?\d",
)

_BACKTRACK_COMMON = (
    rf"\b(?:does|did|will|wo|do){_NOT} work\b|\bnot working\b",
    r"\b(?:start|starting|begin) (?:over|again)\b|\bfrom scratch\b|\brestart\b",
    r"\bscratch that\b|\bdead end\b|\bgive up on\b",
    r"\b(?:a |an )?(?:different|another|new|other) (?:combination|approach|way|method|strategy|idea|"
    r"route|path|option|attempt)\b",
    r"\b(?:let's|let me|let us|i'll|we'll|we should|i should) (?:try )?(?:something else|again)\b",
    r"\bgo(?:ing)? back (?:to|and)\b|\blet(?:'s| me| us) go back\b",
    r"\breconsider\b|\brethink\b|\bre-?do\b",
    r"\balternatively\b",
    r"\b(?:that|this|it|which)(?:'s| is| was) (?:not right|wrong|incorrect|not correct)\b",
    r"\bi made an? (?:error|mistake)\b|\bmy mistake\b|\boops\b",
    r"\b(?:started|start) with the wrong\b|\bwrong (?:formula|approach|method|equation)\b",
    r"\bin circles\b",
)
_BACKTRACK_MATH = _rx(*_BACKTRACK_COMMON, r"\bhold on\b|\bactually,")
_BACKTRACK_STRONG_COUNTDOWN = _rx(*_BACKTRACK_COMMON, r"\bno wait\b|\binstead\b")
# Weak cues start a new attempt only if the next combination also ignores the last result.
_BACKTRACK_WEAK_COUNTDOWN = _rx(
    r"\b(?:let's|let me|let us|we can|i'll|now) try\b|^try\b|\bwhat about\b|\bhow about\b|"
    r"\bwhat if\b|^maybe\b|\bmaybe (?:we|i)\b|\bor maybe\b"
)

# Subgoals. Countdown: a value the trace sets out to make (compared with the target).
_SUBGOAL_VALUE = re.compile(
    r"\b(?:need|needs|want|wants|needed)\s+(?:to\s+(?:get|make|reach|find|obtain|create|form)\s+)?"
    r"(\d{1,12})\b(?!\s*(?:[+*/×÷-]|more than))"
    r"|\b(?:get|make|reach|obtain|form|create)\s+(?:a\s+)?(\d{1,12})\s+(?:from|out of|using|with)\b"
    r"|\b(?:goal|subgoal|sub-goal|target)\s*(?:is|:)?\s*(?:to\s+)?(?:get|make|reach)\s+(\d{1,12})\b"
    r"|\bneed (?:another|one more|an extra)\s+(\d{1,12})\b|\bneed (\d{1,12}) more\b"
)
_SUBGOAL_PLAIN_COUNTDOWN = _rx(
    r"\bfirst,? (?:let's |we |i )?(?:try to |need to |want to )?(?:reach|get|make|find|aim)\b"
    r"(?! \d)",
    r"\bget close to\b|\baim for\b|\bintermediate (?:goal|target|step|value|result)\b",
    r"\bfactor of\b(?! \d)",
)

_ACTION = r"(?:find|compute|calculate|determine|solve|simplify|express|evaluate|show|prove|get|" \
          r"figure out|identify|count|work out|isolate|factor|expand|rewrite|convert|derive)"
_SUBGOAL_MATH = _rx(
    rf"\bfirst,? (?:we |i |let's |let us )?(?:need to |must |have to |should |will |want to |can )?"
    rf"{_ACTION}\b",
    rf"\b(?:next|then),? (?:we |i |let's )(?:need to |must |have to |should |will |want to )?"
    rf"{_ACTION}\b",
    rf"\b(?:we|i) (?:first |now |then |still )?(?:need|must|have) to {_ACTION}\b",
    rf"\bour (?:first |next )?goal is to\b|\b(?:the )?(?:first|next) step is to\b",
    rf"^step \d{{1,3}}\s*[:.)]\s*{_ACTION}\b",
    r"^case \d{1,3}\b|^case [ivx]{1,4}\b",
    r"\bit suffices to\b|\bit is enough to\b",
    rf"\bto {_ACTION}\b[^.;\n]{{1,80}}?(?:we|i) (?:first |will |would )?(?:need|must|have to|require)\b",
)
_SUBGOAL_OBJECT = re.compile(rf"\b{_ACTION}\b([^\n]{{0,60}})")
_SUBGOAL_VERB = re.compile(_ACTION)
_HEADER = re.compile(r"(?:case|step) [0-9ivx]{1,4}\b")
_STOPWORDS = frozenset(
    "the a an its their this that our of value values to first we i need also then it is "
    "using by with from and".split()
)

_BACKWARD_COMMON = (
    r"\bwork(?:ing|ed)? backwards?\b|\bbackwards? from\b|\bbackward chaining\b",
    r"\bstart(?:ing)? (?:from|with|at) the (?:target|answer|end|result|goal|conclusion|desired)\b",
)
_BACKWARD_COUNTDOWN = _rx(
    *_BACKWARD_COMMON,
    r"\bdivisible by\b|\bfactors? of (?:the target|\d)",
    r"\b(?:target|\d+) (?:can be|could be) (?:written|expressed|made|split|obtained)\b",
)
_BACKWARD_MATH = _rx(
    *_BACKWARD_COMMON,
    r"\bit suffices to\b|\bit is enough to\b",
    r"\bfor (?:this|that|it|the equation|the inequality) to (?:hold|be true|work)\b",
    r"\b(?:which|this|that) means (?:we|i) need\b",
    rf"\bto {_ACTION}\b[^.;\n]{{1,80}}?(?:we|i) (?:first |will |would )?(?:need|must|have to|require)\b",
)

# "Let me verify." opens a check; its verdict may come up to this many clauses later ("...
# = 11. Yes, that's right.") and is the same check.
_OPENER = re.compile(rf"\b{_CHECK_VERB}\b|{_CHECK_ACT}|^check\b|\bsubstitut\w{{0,6}} [^.;\n]{{0,40}}?"
                     r"\bback\b|\bplug\w{0,5} [^.;\n]{0,40}?\b(?:back|in|into)\b")
_OPENER_WINDOW = 2

# A clause with no more than one word and no digits ("Hmm...", "Yes!") does not break a run of
# verification clauses.
_TRIVIAL_MAX_WORDS = 1


# ---------------------------------------------------------------------------------------------
# Text preparation.


def _normalize(text: str) -> str:
    # One pass each, all linear. Curly apostrophes and unicode minus become ASCII.
    return text.lower().replace("\u2019", "'").replace("\u2212", "-").replace("\u2013", "-")


def _clauses(text: str) -> list[tuple[int, str]]:
    """(start offset, stripped clause) for each non-empty clause, in order."""
    out: list[tuple[int, str]] = []
    start = 0
    for match in _SPLIT.finditer(text):
        piece = text[start:match.start()]
        if piece.strip():
            out.append((start, piece.strip()))
        start = match.end()
    piece = text[start:]
    if piece.strip():
        out.append((start, piece.strip()))
    return out


def _is_trivial(clause: str) -> bool:
    return len(clause.split(None, _TRIVIAL_MAX_WORDS + 1)) <= _TRIVIAL_MAX_WORDS and not any(
        c.isdigit() for c in clause
    )


# ---------------------------------------------------------------------------------------------
# Countdown arithmetic.

_EQUATION_RUN = re.compile(r"[0-9 \t+\-*/×÷·().=]+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_OPERATOR = re.compile(r"[+\-*/×÷·]")
_ANSWER = re.compile(r"<answer>([^<]{0,%d})</answer>" % _MAX_ANSWER_CHARS)
_TARGET_PATTERNS = (
    re.compile(r"\btarget(?: number)?(?: is| of| =|:)?\s*(\d{1,12})\b"),
    re.compile(r"\b(?:equals?|equal to|reach|get to|we want|i want|need to get|need to reach|"
               r"need to make|make|create)\s+(\d{1,12})\b"),
)


def _number_key(token: str) -> str | None:
    """A canonical string for a number token ("007" -> "7"), or None if it is too long."""
    whole, _, frac = token.partition(".")
    if len(whole) + len(frac) > _MAX_DIGITS:
        return None
    whole = whole.lstrip("0") or "0"
    frac = frac.rstrip("0")
    return f"{whole}.{frac}" if frac else whole


class _Step:
    """A forward combination `a op b (op ...) = c` found in the text."""

    __slots__ = ("offset", "operands", "result", "key")

    def __init__(self, offset: int, operands: list[str], result: str, key: str):
        self.offset, self.operands, self.result, self.key = offset, operands, result, key


def _equations(clause: str, offset: int):
    """Forward steps and reverse equations ("60 = 5 * 12": (offset, left value)) in a clause."""
    steps: list[_Step] = []
    reverse: list[tuple[int, str]] = []
    for run in _EQUATION_RUN.finditer(clause):
        body = run.group()
        if "=" not in body:
            continue
        # A trailing dash is punctuation ("= 28 - no wait"), not an operator.
        parts = [part.strip(" \t.") for part in body.split("=")]
        parts[-1] = parts[-1].rstrip(" \t.+-*/×÷·")
        if len(parts) < 2 or not parts[0] or not parts[-1]:
            # "= 59" or "12 =": keep what parses.
            parts = [p for p in parts if p]
            if len(parts) < 2:
                continue
        first, last = parts[0], parts[-1]
        first_numbers = [_number_key(t) for t in _NUMBER.findall(first)]
        if any(n is None for n in first_numbers):
            continue
        has_operator = _OPERATOR.search(first.lstrip("(-")) is not None
        if has_operator and len(first_numbers) >= 2:
            last_numbers = _NUMBER.findall(last)
            if len(last_numbers) == 1 and _OPERATOR.search(last.lstrip("-")) is None:
                result = _number_key(last_numbers[0])
                if result is not None:
                    key = "".join(first.split()) + "=" + result
                    steps.append(_Step(offset + run.start(), first_numbers, result, key))
        elif len(first_numbers) == 1 and _OPERATOR.search(parts[1].lstrip("(-")) is not None:
            reverse.append((offset + run.start(), first_numbers[0]))
    return steps, reverse


def _evaluate(expression: str) -> Fraction | None:
    """Value of a short `+ - * /` expression with parentheses; None if it does not parse."""
    tokens = re.findall(r"\d+(?:\.\d+)?|[-+*/×÷()]|\S", expression)
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        position += 1
        return tokens[position - 1]

    def atom(depth: int) -> Fraction:
        token = peek()
        if token is None or depth > 20:
            raise ValueError
        if token == "(":
            take()
            value = expr(depth + 1)
            if take() != ")":
                raise ValueError
            return value
        if token == "-":
            take()
            return -atom(depth + 1)
        if token[0].isdigit() and len(token) <= _MAX_DIGITS + 1:
            take()
            return Fraction(token)
        raise ValueError

    def term(depth: int) -> Fraction:
        value = atom(depth)
        while peek() in ("*", "/", "×", "÷"):
            op, right = take(), atom(depth)
            value = value * right if op in "*×" else value / right
        return value

    def expr(depth: int) -> Fraction:
        value = term(depth)
        while peek() in ("+", "-"):
            op, right = take(), term(depth)
            value = value + right if op == "+" else value - right
        return value

    try:
        value = expr(0)
    except (ValueError, ZeroDivisionError, IndexError):
        return None
    return value if position == len(tokens) else None


def _infer_target(text: str, first_equation: int) -> str | None:
    """The Countdown target as stated in the text ("target is 59", "reach 59" before any
    arithmetic), else the value of the final `<answer>` expression."""
    match = _TARGET_PATTERNS[0].search(text)
    if match:
        return _number_key(match.group(1))
    match = _TARGET_PATTERNS[1].search(text, 0, first_equation)
    if match:
        return _number_key(match.group(1))
    answers = _ANSWER.findall(text)
    if answers:
        value = _evaluate(answers[-1])
        if value is not None and value.denominator == 1 and abs(value.numerator) < 10**_MAX_DIGITS:
            return str(value.numerator)
    return None


def _from_target(step: _Step, target: str) -> bool:
    return bool(step.operands) and step.operands[0] == target and step.result != target


def _plans(chain: list[_Step], target: str | None) -> set[int]:
    """Indices of steps that plan the last combination before its operands exist ("we need
    10 twice: 10 * 10 = 100", then 7 + 3 = 10 ...): the result is the target, no operand was
    computed before, and some operand is computed after. They reason backwards."""
    if target is None:
        return set()
    last_produced = {step.result: index for index, step in enumerate(chain)}
    plans: set[int] = set()
    produced_before: set[str] = set()
    for index, step in enumerate(chain):
        if (step.result == target and not any(o in produced_before for o in step.operands)
                and any(last_produced.get(o, -1) > index for o in step.operands)):
            plans.add(index)
        produced_before.add(step.result)
    return plans


def _count_countdown(text: str, target: str | None) -> dict[str, int]:
    clauses = _clauses(text)
    steps: list[_Step] = []
    reverse: list[tuple[int, str]] = []
    per_clause_steps: list[int] = []
    for offset, clause in clauses:
        found, back = _equations(clause, offset)
        steps.extend(found)
        reverse.extend(back)
        per_clause_steps.append(len(found))
    if target is None:
        first = min([s.offset for s in steps] + [r[0] for r in reverse] + [len(text)])
        target = _infer_target(text, first)

    verification = _count_verification(clauses, _VERIFY_COUNTDOWN, per_clause_steps)

    # Backtracking: each gap between consecutive steps (and the tail after the last) is one
    # potential backtrack.
    strong = [m.start() + o for o, c in clauses for m in _BACKTRACK_STRONG_COUNTDOWN.finditer(c)]
    weak = [m.start() + o for o, c in clauses for m in _BACKTRACK_WEAK_COUNTDOWN.finditer(c)]
    backtracking = 0
    seen_keys: set[str] = set()
    # Steps that start from the target ("59 - 4 = 55") reason backwards; they are not part of
    # the forward chain.
    chain = [s for s in steps if target is None or not _from_target(s, target)]
    plans = _plans(chain, target)
    plan_offsets = [s.offset for i, s in enumerate(chain) if i in plans]
    chain = [s for i, s in enumerate(chain) if i not in plans]
    # consumed[i]: a later step uses chain[i]'s result; each use is matched to the nearest
    # earlier step that produced the value.
    consumed = [False] * len(chain)
    uses_ahead: dict[str, int] = {}
    for index in range(len(chain) - 1, -1, -1):
        result = chain[index].result
        if uses_ahead.get(result, 0) > 0:
            consumed[index] = True
            uses_ahead[result] -= 1
        for operand in chain[index].operands:
            uses_ahead[operand] = uses_ahead.get(operand, 0) + 1
    strong_i = weak_i = 0
    for index, step in enumerate(chain):
        gap_strong = gap_weak = False
        while strong_i < len(strong) and strong[strong_i] < step.offset:
            gap_strong = gap_strong or index > 0
            strong_i += 1
        while weak_i < len(weak) and weak[weak_i] < step.offset:
            gap_weak = gap_weak or index > 0
            weak_i += 1
        if index > 0:
            previous = chain[index - 1]
            uses_previous = previous.result in step.operands
            # A whole solution restated at the end ("So 39 + 8 + 6 = 53") starts nothing new.
            is_summary = step.result == target and len(step.operands) >= 3
            new_start = (
                not uses_previous
                and not consumed[index - 1]
                and step.key not in seen_keys
                and not is_summary
            )
            if gap_strong or new_start or (gap_weak and not uses_previous):
                backtracking += 1
        seen_keys.add(step.key)
    if chain and strong_i < len(strong):
        backtracking += 1  # an attempt abandoned after the last combination

    # Backward chaining: one per clause that reasons from the target.
    backward_clauses: set[int] = set()
    produced: set[str] = set()
    step_i = reverse_i = plan_i = 0
    for index, (offset, clause) in enumerate(clauses):
        end = offset + len(clause)
        if _BACKWARD_COUNTDOWN.search(clause):
            backward_clauses.add(index)
        while reverse_i < len(reverse) and reverse[reverse_i][0] < end:
            value = reverse[reverse_i][1]
            if target is None or value == target:
                backward_clauses.add(index)
            reverse_i += 1
        while plan_i < len(plan_offsets) and plan_offsets[plan_i] < end:
            backward_clauses.add(index)
            plan_i += 1
        while step_i < len(steps) and steps[step_i].offset < end:
            step = steps[step_i]
            if (target is not None and step.operands and step.operands[0] == target
                    and target not in produced and step.result != target):
                backward_clauses.add(index)
            produced.add(step.result)
            step_i += 1

    # Subgoals: distinct intermediate values (not the target), plus value-less goals per clause.
    values: set[str] = set()
    plain = 0
    for _, clause in clauses:
        found_value = False
        for match in _SUBGOAL_VALUE.finditer(clause):
            number = next(g for g in match.groups() if g is not None)
            key = _number_key(number)
            if key is not None and key != target:
                values.add(key)
                found_value = True
        if not found_value and _SUBGOAL_PLAIN_COUNTDOWN.search(clause):
            plain += 1
    return {
        "verification": verification,
        "backtracking": backtracking,
        "subgoal_setting": len(values) + plain,
        "backward_chaining": len(backward_clauses),
    }


# ---------------------------------------------------------------------------------------------
# Shared and math rules.


def _count_verification(clauses, pattern: re.Pattern[str], new_steps: Sequence[int] | None) -> int:
    """Clauses with a verification cue; a cue clause that directly follows another (ignoring
    "Hmm..."-like clauses) and brings no new combination continues the same check."""
    count = 0
    in_check = False
    pending = 0  # clauses left in which a verdict still belongs to an opened check
    for index, (_, clause) in enumerate(clauses):
        if pattern.search(clause):
            fresh = new_steps is not None and new_steps[index] > 0
            if not (in_check or pending) or fresh:
                count += 1
            in_check = True
            pending = _OPENER_WINDOW if _OPENER.search(clause) else 0
        elif not _is_trivial(clause):
            in_check = False
            pending = max(0, pending - 1)
    return count


def _subgoal_key(clause: str) -> str:
    """What the goal is about, so that restating a goal does not count twice: the header of a
    "Case 2:" / "Step 3:" line, the first content word after "need" ("to find X we need its
    height" -> "height"), else after the goal's verb ("find the height" -> "height")."""
    header = _HEADER.match(clause)
    if header:
        return header.group()
    need = clause.rfind(" need ")
    if need >= 0:
        words = clause[need + len(" need "):].split(None, 8)[:8]
    else:
        match = _SUBGOAL_OBJECT.search(clause)
        words = match.group(1).split(None, 8)[:8] if match else []
    for word in words:
        word = word.strip("$\\^{}().,:;")
        if word and word not in _STOPWORDS and not _SUBGOAL_VERB.fullmatch(word):
            return word
    return clause[:40]


def _count_math(text: str) -> dict[str, int]:
    clauses = _clauses(text)
    verification = _count_verification(clauses, _VERIFY_MATH, None)
    backtracking = 0
    in_backtrack = False
    subgoals: set[str] = set()
    backward = 0
    for index, (_, clause) in enumerate(clauses):
        if _BACKTRACK_MATH.search(clause):
            if not in_backtrack:
                backtracking += 1
            in_backtrack = True
        elif not _is_trivial(clause):
            in_backtrack = False
        match = _SUBGOAL_MATH.search(clause)
        if match and not (index == 0 and _restates_goal(clause)):
            subgoals.add(_subgoal_key(clause[match.start():]))
        if _BACKWARD_MATH.search(clause):
            backward += 1
    return {
        "verification": verification,
        "backtracking": backtracking,
        "subgoal_setting": len(subgoals),
        "backward_chaining": backward,
    }


_RESTATES_GOAL = re.compile(r"^(?:okay,? |ok,? |so,? |alright,? )*(?:so )?(?:we|i) (?:need|want|have) to "
                            r"(?:find|compute|calculate|determine|solve|show|prove|evaluate)\b")


def _restates_goal(clause: str) -> bool:
    """An opening "I need to find ..." restates the question rather than setting a subgoal."""
    return _RESTATES_GOAL.search(clause) is not None


# ---------------------------------------------------------------------------------------------
# Public API.


def count(text: str, domain: str, *, target: int | str | None = None) -> dict[str, int]:
    """Counts of the four behaviors in one response.

    `domain` is "countdown" (arithmetic traces; `target`, if given, overrides the target read
    from the text) or "math". Returns `{"verification", "backtracking", "subgoal_setting",
    "backward_chaining"}` -> non-negative int. Never raises on any `text`; linear time.
    """
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    normalized = _normalize(text)
    if domain == "countdown":
        target_key = _number_key(str(target).strip()) if target is not None else None
        return _count_countdown(normalized, target_key)
    return _count_math(normalized)


def count_many(texts: Iterable[str], domain: str) -> list[dict[str, int]]:
    """`count` for each text, in order."""
    return [count(text, domain) for text in texts]


def average(counts: Sequence[Mapping[str, int]]) -> dict[str, float]:
    """Mean count per response for each behavior (0.0 for an empty list)."""
    counts = list(counts)
    if not counts:
        return {key: 0.0 for key in KEYS}
    return {key: sum(float(c.get(key, 0)) for c in counts) / len(counts) for key in KEYS}


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Pearson correlation of two equal-length sequences (e.g. mean backtrack count and accuracy
    per checkpoint); NaN when it is undefined (fewer than 2 points, a constant sequence, or a
    non-finite value)."""
    xs, ys = [float(x) for x in xs], [float(y) for y in ys]
    if len(xs) != len(ys):
        raise ValueError(f"pearson needs equal lengths, got {len(xs)} and {len(ys)}")
    n = len(xs)
    if n < 2 or not all(math.isfinite(v) for v in xs + ys):
        return math.nan
    mean_x, mean_y = math.fsum(xs) / n, math.fsum(ys) / n
    dx = [x - mean_x for x in xs]
    dy = [y - mean_y for y in ys]
    sxx, syy = math.fsum(d * d for d in dx), math.fsum(d * d for d in dy)
    if sxx == 0.0 or syy == 0.0:
        return math.nan
    r = math.fsum(a * b for a, b in zip(dx, dy)) / math.sqrt(sxx * syy)
    return max(-1.0, min(1.0, r))
