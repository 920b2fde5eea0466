"""Hand-labelled reasoning traces for the behavior classifier (written for this test).

Each trace is a response as a model might write it (Countdown: after the TinyZero prefill
"Let me solve this step by step.\\n<think>"; math: after a question), with the counts a careful
human reader gives under the definitions in docs/behaviors.md:

- verification: each place the trace checks a result against the target, a subgoal, or the
  problem (explicitly, "61 is not 59", or implicitly, "too high", "that works"). A block that
  re-checks a whole solution counts once; ASTRO's reflection question plus its verdict counts
  once.
- backtracking: each time the trace abandons its current line and starts another: a phrase
  ("this doesn't work", "let's go back to ...") or, in Countdown, a new combination that neither
  uses the previous result nor has that result used later. A phrase and the new start it
  introduces count once together.
- subgoal_setting: each distinct intermediate goal the trace sets itself ("we need to get 12",
  "first, find the radius"); restating the problem's own goal is not a subgoal.
- backward_chaining: each place the trace reasons from the goal toward what is given ("60 = 5 *
  12, so ...", "60 / 5 = 12", "working backwards", "to find X we need Y").

The labels were written together with the traces, before the classifier existed, and were not
changed to fit it. Some traces are deliberately hard (behaviors without cue words; cue words
used in other senses) and are expected to cost the classifier precision or recall.
"""

from __future__ import annotations

KEYS = ("verification", "backtracking", "subgoal_setting", "backward_chaining")


def _t(id, domain, text, v=0, b=0, s=0, bc=0):
    return {
        "id": id,
        "domain": domain,
        "text": text,
        "expected": {"verification": v, "backtracking": b, "subgoal_setting": s, "backward_chaining": bc},
    }


COUNTDOWN = [
    _t(
        "cd_qwen_rambling_success",
        "countdown",
        " We need to use the numbers 19, 36, 55, and 7 to reach 65. Let's try adding 55 and 7: "
        "55 + 7 = 62. Then 62 + 19 = 81, which is too high. Let's try a different combination: "
        "36 + 19 = 55. 55 + 55 is not allowed since we only have one 55. What about 55 - 19 = 36? "
        "Then 36 + 36 = 72, no. Let's try 55 + 36 = 91, 91 - 19 = 72, 72 - 7 = 65. That works! "
        "</think>\n<answer> 55 + 36 - 19 - 7 </answer>",
        v=3, b=3,
    ),
    _t(
        "cd_claude_backward_subgoal",
        "countdown",
        "\nTarget: 60. Numbers: 5, 3, 4.\nWorking backwards: 60 = 5 * 12, so we need 12 from 3 and 4.\n"
        "3 * 4 = 12. Good, that's our subgoal.\nThen 5 * 12 = 60, which is the target.\n"
        "Let me verify: 5 * (3 * 4) = 5 * 12 = 60 ✓\n</think>\n<answer>5 * (3 * 4)</answer>",
        v=3, s=1, bc=1,
    ),
    _t(
        "cd_solver_steps_only",
        "countdown",
        "\n44 + 19 = 63\n63 - 35 = 28\n</think>\n<answer>(44 + 19) - 35</answer>",
    ),
    _t(
        "cd_silent_restarts",
        "countdown",
        " 28 + 13 = 41, 41 - 9 = 32, 32 + 2 = 34. 28 - 13 = 15, 15 + 9 = 24, 24 * 2 = 48. "
        "13 - 9 = 4, 4 * 2 = 8, 28 + 8 = 36. </think>\n<answer> 28 + (13 - 9) * 2 </answer>",
        b=2,
    ),
    _t(
        "cd_check_other_sense",
        "countdown",
        " Let me check which numbers we have: 7, 8, 12 and 50, and the target is 70. "
        "50 + 12 = 62, 62 + 8 = 70, but then the 7 is left over. 7 * 8 = 56, 56 + 50 = 106, "
        "106 - 12 = 94. Hmm. 12 - 7 = 5, 8 * 5 = 40, ... (50 - 8) / 7 = 6, 6 * 12 = 72. "
        "(12 - 7) * 8 = 40, 40 + 50 = 90. 50 - 12 = 38, 38 + 8 = 46. "
        "</think>\n<answer> 50 + 12 + 8 </answer>",
        v=1, b=5,
    ),
    _t(
        "cd_parallel_parts_not_backtrack",
        "countdown",
        " First, 25 + 5 = 30. Separately, 9 - 6 = 3. Then 30 * 3 = 90, which equals the target 90. "
        "</think>\n<answer> (25 + 5) * (9 - 6) </answer>",
        v=1,
    ),
    _t(
        "cd_subgoal_factor",
        "countdown",
        " The target is 96. 96 is divisible by 12 and 8, so let's first reach a factor of 96. "
        "If we can get 8 from 2 and 4, then we multiply by 12. 2 * 4 = 8. 8 * 12 = 96. "
        "This equals 96, the target! </think>\n<answer> 2 * 4 * 12 </answer>",
        v=1, s=2, bc=1,
    ),
    _t(
        "cd_verification_is_not",
        "countdown",
        " Let's try 68 - 9 = 59. 59 + 3 = 62, 62 is not 61. Let's try 68 - 3 = 65, 65 - 9 = 56, "
        "56 is not 61 either. How about 9 - 3 = 6, 68 - 6 = 62? Still not 61. Maybe 68 + 3 = 71 "
        "and 71 - 9 = 62. Hmm, always 62. What about 3 * 9 = 27? 68 - 27 = 41. Too low. "
        "</think>\n<answer> 68 - 9 + 3 </answer>",
        v=4, b=4,
    ),
    _t(
        "cd_backward_target_division",
        "countdown",
        " Target 24 with 2, 6, 8, 10. 24 / 2 = 12, so we need to make 12 from 6, 8 and 10. "
        "10 + 8 = 18, 18 - 6 = 12. Yes! That gives 12. Then 12 * 2 = 24. "
        "</think>\n<answer> (10 + 8 - 6) * 2 </answer>",
        v=1, s=1, bc=1,
    ),
    _t(
        "cd_target_minus",
        "countdown",
        " We want 53. The numbers are 39, 8, 6. 53 - 39 = 14, so I need 14 from 8 and 6: 8 + 6 = 14. "
        "So 39 + 8 + 6 = 53. </think>\n<answer> 39 + 8 + 6 </answer>",
        s=1, bc=1,
    ),
    _t(
        "cd_explicit_dead_end",
        "countdown",
        " Numbers 4, 17, 23, 1, target 25. 23 + 17 = 40, 40 - 4 = 36, 36 - 1 = 35. This doesn't "
        "work. Let's start over. 23 + 4 = 27, 27 - 1 = 26. Close, but one too many, and 17 is "
        "unused. Scratch that. 17 + 4 = 21, 21 + 1 = 22, 22 + 23 = 45. No. 23 - 17 = 6, "
        "6 * 4 = 24, 24 + 1 = 25. That's the target. </think>\n<answer> (23 - 17) * 4 + 1 </answer>",
        v=3, b=3,
    ),
    _t(
        "cd_recap_is_verification",
        "countdown",
        " 70 - 46 = 24. 24 + 11 = 35. Found it: 35 is the target.\nCheck: 70 - 46 = 24, 24 + 11 = 35. "
        "Each number used once. ✓ </think>\n<answer> 70 - 46 + 11 </answer>",
        v=2,
    ),
    _t(
        "cd_too_high_too_low",
        "countdown",
        " 91 + 5 = 96, too high. 91 - 5 = 86, too low, we need 89. 91 - 2 = 89, but then the 5 "
        "remains. 5 - 2 = 3, 91 - 3 = 88. Almost. 5 * 2 = 10, 91 - 10 = 81. </think>\n"
        "<answer> 91 - 5 + 2 </answer>",
        v=4, b=4,
    ),
    _t(
        "cd_numbers_listed_no_behaviors",
        "countdown",
        " Numbers: 12, 24, 36. Target: 72. 12 + 24 = 36 and 36 + 36 = 72. </think>\n"
        "<answer> 12 + 24 + 36 </answer>",
    ),
    _t(
        "cd_need_restates_goal",
        "countdown",
        " We need to get 87 using 80, 3 and 4. 80 + 3 = 83, 83 + 4 = 87. </think>\n"
        "<answer> 80 + 3 + 4 </answer>",
    ),
    _t(
        "cd_claude_all_strategies",
        "countdown",
        "\nLet me analyze this step by step.\n1. Target is 44, numbers are 8, 12, 4, 16.\n"
        "2. Working backwards: 44 = 4 * 11, but 11 is hard to make. 44 = 48 - 4, and 48 = 4 * 12 "
        "... but we only have one 4.\n3. Let's set an intermediate goal: get 28, since 28 + 16 = 44.\n"
        "4. 12 + 16 = 28 - no wait, that uses 16 twice. Let me try another way.\n"
        "5. 8 * 4 = 32, 32 + 12 = 44, but 16 is left. 16 / 8 = 2, 2 * 4 = 8, 8 + 12 = 20. Not 44.\n"
        "6. 16 - 12 = 4, 4 * 8 = 32, 32 + 4 = 36. No.\n"
        "7. 12 * 4 = 48, 48 - 16 = 32, 32 + 8 = 40. Still 4 short.\n"
        "8. 16 + 12 = 28, 28 + 8 = 36, 36 + 4 = 40. Not it.\n"
        "9. 16 * 4 = 64, 64 - 12 = 52, 52 - 8 = 44. Yes! This equals 44.\n"
        "</think>\n<answer> 16 * 4 - 12 - 8 </answer>",
        v=7, b=6, s=1, bc=3,
    ),
    _t(
        "cd_truncated",
        "countdown",
        " Let's try 97 - 41 = 56, then 56 / 8 = 7, and 7 * 3 = 21. That is not 33. Let's try "
        "97 - 8 = 89, 89 - 41 = 48, 48 / 3 = 16. Let's try 41 - 8 = 33, and then 97",
        v=1, b=2,
    ),
    _t(
        "cd_multiple_subgoals",
        "countdown",
        " The target is 100. We need to get 10 twice: 10 * 10 = 100. The first 10 can come from "
        "7 + 3 = 10 and the second 10 from 14 - 4 = 10. Then 10 * 10 = 100. That's exactly 100. "
        "</think>\n<answer> (7 + 3) * (14 - 4) </answer>",
        v=1, s=1, bc=1,
    ),
    _t(
        "cd_answer_only",
        "countdown",
        " </think>\n<answer> (75 - 25) / 2 + 3 </answer>",
    ),
    _t(
        "cd_verify_step_by_step",
        "countdown",
        " Try 6 * 9 = 54. 54 + 15 = 69. Let me double-check: 6 * 9 is 54 and 54 + 15 is 69, which "
        "matches the target of 69. </think>\n<answer> 6 * 9 + 15 </answer>",
        v=1,
    ),
    _t(
        "cd_distance_and_revise",
        "countdown",
        " 50 + 25 = 75, and we need 82, so we are 7 short. 8 - 1 = 7! 75 + 7 = 82. Now all numbers "
        "are used: 50, 25, 8, 1. </think>\n<answer> 50 + 25 + 8 - 1 </answer>",
        v=2, s=1,
    ),
    _t(
        "cd_alternatively",
        "countdown",
        " 15 * 3 = 45, 45 + 2 = 47, 47 - 1 = 46, which is 1 away from the target 47. Alternatively, "
        "15 * 3 = 45 and 45 + 2 * 1 = 47. Yes, 47. </think>\n<answer> 15 * 3 + 2 * 1 </answer>",
        v=2, b=1,
    ),
]

MATH = [
    _t(
        "m_astro_backtrack",
        "math",
        "We need the sum of the roots of $x^2 - 5x + 6 = 0$. Factoring, $(x-1)(x-6) = x^2 - 7x + 6$.\n\n"
        "But wait, are we solving the problem correctly so far? Hmm... I'm not sure if we're solving "
        "the problem correctly so far. Let's go back to where we factored the quadratic.\n\n"
        "The factors of 6 that add to 5 are 2 and 3, so $(x-2)(x-3) = 0$ and the roots are 2 and 3.\n\n"
        "But wait, are we solving the problem correctly so far? Hmm... Our solution seems to be "
        "correct so far.\n\nThe sum is $2 + 3 = 5$, so the answer is $\\boxed{5}$.",
        v=2, b=1,
    ),
    _t(
        "m_astro_restart",
        "math",
        "Let $n$ be the number of students. Then $3n + 2 = 20$, so $n = 7$.\n\nBut wait, are we "
        "solving the problem correctly so far? Hmm... I'm not sure if we're solving the problem "
        "correctly so far. Let's restart our solution from the beginning.\n\nEach row has 3 "
        "students and there are 2 left over, and the total is 20, so $3n = 18$ and $n = 6$.\n\n"
        "But wait, are we solving the problem correctly so far? Hmm... Our solution seems to be "
        "correct so far.\n\n$\\boxed{6}$",
        v=2, b=1,
    ),
    _t(
        "m_textbook_plain",
        "math",
        "The area of a circle is $\\pi r^2$. With $r = 3$, the area is $9\\pi$. Therefore the answer "
        "is $\\boxed{9\\pi}$.",
    ),
    _t(
        "m_substitute_back",
        "math",
        "Solve $2x + 3 = 11$. Subtracting 3 gives $2x = 8$, so $x = 4$. Let me check by substituting "
        "back: $2(4) + 3 = 11$. ✓ So $x = \\boxed{4}$.",
        v=1,
    ),
    _t(
        "m_subgoals_then",
        "math",
        "To find the area of the triangle, we first need its height. First, find the height using "
        "the Pythagorean theorem: $h = \\sqrt{13^2 - 5^2} = 12$. Next, we compute the area: "
        "$\\frac{1}{2} \\cdot 10 \\cdot 12 = 60$.\n\nThe area is $\\boxed{60}$.",
        s=1, bc=1,
    ),
    _t(
        "m_wait_mistake",
        "math",
        "The probability of two heads in three flips is $\\binom{3}{2}/8 = 3/8$. Wait, that's not "
        "right — the question asks for at least two heads. So we add the case of three heads: "
        "$3/8 + 1/8 = 1/2$. The answer is $\\boxed{\\frac{1}{2}}$.",
        v=1, b=1,
    ),
    _t(
        "m_proof_contradiction_negative",
        "math",
        "Suppose $\\sqrt{2} = p/q$ in lowest terms. Then $p^2 = 2q^2$, so $p$ is even; write $p = "
        "2k$. Then $q^2 = 2k^2$, so $q$ is even too, which is a contradiction. Hence $\\sqrt{2}$ "
        "is irrational.",
    ),
    _t(
        "m_check_word_problem",
        "math",
        "Maria wrote a check for $\\$45$ and deposited a check for $\\$120$. Her balance went from "
        "$\\$300$ to $300 - 45 + 120 = 375$. The answer is $\\boxed{375}$.",
    ),
    _t(
        "m_working_backwards",
        "math",
        "Working backwards from the final amount: after the third day she had 5 apples, so before "
        "eating half she had 10. Before the second day she had 20, and before the first day 40. "
        "Let's verify: 40 → 20 → 10 → 5. Correct. So she started with $\\boxed{40}$ apples.",
        v=1, bc=1,
    ),
    _t(
        "m_r1_style_wait",
        "math",
        "Okay, so I need to find $f(3)$ where $f(x) = x^2 - 2x$. $f(3) = 9 - 6 = 3$. Wait, let me "
        "double-check that. $3^2 = 9$ and $2 \\cdot 3 = 6$, so $9 - 6 = 3$. Yes, that's right. "
        "Hmm, but wait, is the function $x^2 - 2x$ or $x^2 + 2x$? The problem says minus, so 3 is "
        "correct.\n\n**Final Answer**\n\\boxed{3}",
        v=2,
    ),
    _t(
        "m_sequence_first_term_negative",
        "math",
        "The first term of the sequence is 3 and the common difference is 4, so the 10th term is "
        "$3 + 9 \\cdot 4 = 39$. Then the sum of the first 10 terms is $\\frac{10(3 + 39)}{2} = 210$. "
        "The answer is $\\boxed{210}$.",
    ),
    _t(
        "m_to_find_we_need",
        "math",
        "To find the volume of the cone, we need the radius. The circumference is $10\\pi$, so the "
        "radius is 5. The volume is $\\frac{1}{3}\\pi \\cdot 25 \\cdot 12 = 100\\pi$. "
        "$\\boxed{100\\pi}$",
        s=1, bc=1,
    ),
    _t(
        "m_i_made_an_error",
        "math",
        "We have $\\log_2 32 = 6$. Hmm, I made an error: $2^5 = 32$, so $\\log_2 32 = 5$. Then "
        "$5 + \\log_2 4 = 5 + 2 = 7$. The answer is $\\boxed{7}$.",
        v=1, b=1,
    ),
    _t(
        "m_let_me_try_another",
        "math",
        "Let's try to integrate by parts with $u = e^x$, $dv = \\sin x\\,dx$. This gives another "
        "integral of the same kind, and the approach goes in circles. Let me try a different "
        "approach: write $I = \\int e^x \\sin x\\,dx$ and integrate by parts twice, then solve for "
        "$I$: $I = \\frac{e^x(\\sin x - \\cos x)}{2} + C$.",
        b=1, s=0,
    ),
    _t(
        "m_verify_in_problem_negative",
        "math",
        "The table shows the values of $f$: $f(1) = 2$, $f(2) = 4$, $f(3) = 8$. Each value is double "
        "the previous one, so $f(n) = 2^n$ and $f(6) = 64$. $\\boxed{64}$",
    ),
    _t(
        "m_step_headers",
        "math",
        "Step 1: Find the slope. $m = \\frac{7 - 3}{4 - 2} = 2$.\nStep 2: Find the intercept. "
        "$3 = 2 \\cdot 2 + b$, so $b = -1$.\nStep 3: Write the equation: $y = 2x - 1$.\n"
        "Step 4: Check with the second point: $2 \\cdot 4 - 1 = 7$. ✓\n\n$\\boxed{y = 2x - 1}$",
        v=1, s=2,
    ),
    _t(
        "m_goal_restated",
        "math",
        "We want to find the value of $x$ that satisfies $5x - 7 = 18$. Adding 7 gives $5x = 25$ "
        "and dividing by 5 gives $x = 5$. $\\boxed{5}$",
    ),
    _t(
        "m_suffices",
        "math",
        "We want to show $a^2 + b^2 \\ge 2ab$. It suffices to show that $a^2 - 2ab + b^2 \\ge 0$, "
        "which is $(a - b)^2 \\ge 0$, true for all real $a, b$.",
        s=1, bc=1,
    ),
    _t(
        "m_actually_correction",
        "math",
        "There are 12 months with 30 days. Actually, that's wrong: only April, June, September and "
        "November have exactly 30 days, so there are 4 such months. $\\boxed{4}$",
        v=1, b=1,
    ),
    _t(
        "m_sanity_check",
        "math",
        "The speed is $\\frac{150 \\text{ km}}{2.5 \\text{ h}} = 60$ km/h. As a sanity check, "
        "in 2 hours at 60 km/h the car goes 120 km, a bit less than 150, which is consistent. "
        "$\\boxed{60}$",
        v=1,
    ),
    _t(
        "m_go_back_other_sense",
        "math",
        "A ball is thrown up and comes back down after 4 seconds. It goes up for 2 seconds, so the "
        "initial speed is $9.8 \\cdot 2 = 19.6$ m/s. $\\boxed{19.6}$",
    ),
    _t(
        "m_case_analysis",
        "math",
        "We break the problem into two cases. Case 1: $x \\ge 0$. Then $|x| = x$ and $x + 2x = 9$, "
        "so $x = 3$, which satisfies $x \\ge 0$. Case 2: $x < 0$. Then $-x + 2x = 9$, so $x = 9$, "
        "which contradicts $x < 0$. So $x = \\boxed{3}$.",
        v=2, s=2,
    ),
    _t(
        "m_hold_on_recompute",
        "math",
        "The total cost is $4 \\times 3.50 = 12$ dollars. Hold on, $4 \\times 3.50 = 14$, not 12. "
        "Let me redo the rest: with the $\\$6$ discount the cost is $14 - 6 = 8$. $\\boxed{8}$",
        v=1, b=1,
    ),
    _t(
        "m_plug_in",
        "math",
        "The quadratic formula gives $x = \\frac{-4 \\pm \\sqrt{16 + 20}}{2} = \\frac{-4 \\pm 6}{2}$, "
        "so $x = 1$ or $x = -5$. Plugging $x = 1$ into $x^2 + 4x - 5$ gives $1 + 4 - 5 = 0$, as "
        "expected. $\\boxed{1, -5}$",
        v=1,
    ),
]

# Held out: written and labelled after the classifier was frozen (commit 8003a0a), before it
# was run on them; no rule was changed for them. docs/behaviors.md reports them separately.
HELD_OUT_COUNTDOWN = [
    _t(
        "h_cd_thats_it",
        "countdown",
        " First, I'll try 75 - 29 = 46, then 46 - 3 = 43. That's it! So the answer is 75 - 29 - 3. "
        "</think>\n<answer> 75 - 29 - 3 </answer>",
        v=1,
    ),
    _t(
        "h_cd_unused_numbers",
        "countdown",
        " I want to reach 26. 8 * 4 = 32, which is 6 more than 26, and we have a 6, so 32 - 6 = 26. "
        "But the 2 is still unused. Let's think again. 6 * 4 = 24, 24 + 2 = 26, but now 8 is unused. "
        "What if we make 1 out of 8 and... no. 8 / 2 = 4, 4 * 6 = 24, 24 + 4 = 28, too big, and 4 "
        "was already used. </think>\n<answer> 6 * 4 + 2 </answer>",
        v=4, b=2, s=1,
    ),
    _t(
        "h_cd_work_backwards_verified",
        "countdown",
        " Let's work backwards from 18. 18 = 2 * 9, and 9 = 3 + 6. The numbers are 2, 3, 6. "
        "So 2 * (3 + 6) = 18. Verification: 3 + 6 = 9, 9 * 2 = 18. Correct! "
        "</think><answer>2 * (3 + 6)</answer>",
        v=1, bc=1,
    ),
    _t(
        "h_cd_back_to_basics",
        "countdown",
        " Going back to basics: 9 + 5 = 14 and 14 * 2 = 28. </think>\n<answer> (9 + 5) * 2 </answer>",
    ),
    _t(
        "h_cd_every_path_75",
        "countdown",
        " 47 + 39 = 86, 86 - 11 = 75. Not quite 72. 47 - 11 = 36, 36 + 39 = 75 again. Hmm, "
        "39 - 11 = 28, 47 + 28 = 75. Every path gives 75! Since 75 - 72 = 3, we need to lose 3 "
        "somewhere. Maybe 47 + 39 - 11 is off because we need 14 instead of 11. "
        "</think>\n<answer> 47 + 39 - 11 </answer>",
        v=2, b=2, s=1,
    ),
    _t(
        "h_cd_two_backward_plans",
        "countdown",
        " Target 63 from 7, 2, 5, 4. 63 = 7 * 9, so let's first get 9 from 2, 5 and 4. 5 + 4 = 9, "
        "but then the 2 is left. 5 * 2 - 4 = 6, no. 4 * 2 + 5 = 13, not 9 either. This is not "
        "working; let's try 63 = 70 - 7 instead. 70 needs 7 * 10 and 10 = 5 * 2, but then the 4 is "
        "left and the 7 is used twice. </think>\n<answer> 7 * (5 + 4) </answer>",
        v=4, b=3, s=1, bc=2,
    ),
]

HELD_OUT_MATH = [
    _t(
        "h_m_double_check_small_case",
        "math",
        "We need to compute $\\sum_{k=1}^{10} k^2$. Using the formula $\\frac{n(n+1)(2n+1)}{6}$ with "
        "$n = 10$ gives $\\frac{10 \\cdot 11 \\cdot 21}{6} = 385$. To double-check, the first few terms "
        "are 1, 4, 9, 16, which add to 30, and the formula with $n = 4$ gives "
        "$\\frac{4 \\cdot 5 \\cdot 9}{6} = 30$. Good. $\\boxed{385}$",
        v=1,
    ),
    _t(
        "h_m_misread",
        "math",
        "Let $x$ be the smaller number. Then $x + (x + 6) = 40$, so $x = 17$. Hmm, wait. The problem "
        "says the larger is 6 times the smaller, not 6 more. I misread it. So $x + 6x = 40$, which "
        "gives $x = 40/7$. That doesn't look like a nice number, but the problem does not require an "
        "integer. $\\boxed{\\frac{40}{7}}$",
        v=2, b=1,
    ),
    _t(
        "h_m_enough_to_show",
        "math",
        "To prove that $n^3 - n$ is divisible by 6, it is enough to show it is divisible by 2 and by "
        "3. Write $n^3 - n = (n-1)n(n+1)$, a product of three consecutive integers. Among them one is "
        "even and one is a multiple of 3. Hence $6 \\mid n^3 - n$.",
        s=2, bc=1,
    ),
    _t(
        "h_m_astro_positive_then_back",
        "math",
        "First, we compute $f(2) = 2^2 + 1 = 5$.\n\nBut wait, are we solving the problem correctly so "
        "far? Hmm... Our solution seems to be correct so far.\n\nNext, we compute $f(f(2)) = f(5) = "
        "26$.\n\nBut wait, are we solving the problem correctly so far? Hmm... I'm not sure if we're "
        "solving the problem correctly so far. Let's go back to where we computed $f(2)$.\n\nThe "
        "function is $f(x) = x^2 - 1$, so $f(2) = 3$ and $f(f(2)) = f(3) = 8$.\n\n$\\boxed{8}$",
        v=2, b=1, s=1,
    ),
    _t(
        "h_m_back_check_first_negative",
        "math",
        "A store gives money back on returns. Sam bought 3 shirts at $\\$12$ and returned the first "
        "one, getting $\\$12$ back. He paid by check. He spent $36 - 12 = 24$ dollars. $\\boxed{24}$",
    ),
    _t(
        "h_m_wait_no_recalculate",
        "math",
        "The average of 4, 8 and 15 is $(4 + 8 + 15)/3 = 27/3 = 8$. Wait, no: $27/3 = 9$. Let me "
        "recalculate the rest with 9. The deviations are $-5, -1, 6$, and their squares sum to "
        "$25 + 1 + 36 = 62$. So the variance is $62/3$. Let me verify the sum of deviations: "
        "$-5 - 1 + 6 = 0$, as it should be. $\\boxed{\\frac{62}{3}}$",
        v=2, b=1,
    ),
]

DEVELOPMENT = COUNTDOWN + MATH
HELD_OUT = HELD_OUT_COUNTDOWN + HELD_OUT_MATH
TRACES = DEVELOPMENT + HELD_OUT
