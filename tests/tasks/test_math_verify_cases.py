"""Math-Verify's public regression cases whose prediction holds a `\\boxed{}` answer.

Source: huggingface/Math-Verify, `tests/test_all.py` (the `gold, pred, expected` parametrize
lists of test_latex_notation, test_percent_notation, test_latex_notation_math,
test_matrix_extraction, test_math_extraction_edge_cases and
test_math_extraction_additional_cases); `tests/test_yujianll.py` and
`tests/test_mixed_number_extraction.py` have no boxed predictions. Every case of those lists
whose prediction contains `\\boxed` is here, with Math-Verify's expected verdict. We re-express
them: long model outputs are shortened to the sentences around their boxes and final-answer
statements (what extraction looks at); golds and boxes are kept character for character,
including the doubled backslashes of some of their raw strings. `test_the_shortened_texts_keep_
math_verifys_verdict` checks, with math-verify itself, that the shortening kept each verdict.

A gold that is a worked solution (it has a box, or is longer than a short answer) becomes a
record's `solution`; a short one its `answer`. We grade with the default `math` task.
The cases we decide differently are listed in `DISAGREEMENTS` with the reason, and in
docs/grading.md; the agreement rate must stay at least 95%.
"""

from __future__ import annotations

import pytest

from jaxreason.tasks import get

CASES = [
    # ---- test_latex_notation
    ("latex_boxed_frac", "$1/3$", r"$\boxed{\frac{1}{3}}$", 1),
    # ---- test_percent_notation
    ("percent_box_then_pct", r"$28\%$", r"$\boxed{28}$ pct", 1),
    ("percent_pct_in_box", r"$28\%$", r"$\boxed{28 pct}", 1),
    ("percent_percent_in_box", r"$28\%$", r"$\boxed{28 percent}", 1),
    ("percent_percentage_in_box", r"$28\%$", r"$\boxed{28 percentage}", 1),
    # ---- test_latex_notation_math
    ("expression_2_minus_2p", "$2-2p$",
     r"Since $x<2$, it follows that $|x-2|=2-x$. If $2-x=p$, then $x=2-p$. Thus $x-p=\boxed{2-2p}$.", 1),
    ("matrix_boxed_in_align",
     "\\boxed{\n\\begin{pmatrix} 0 & 3 \\\\ 0 & -1 \\end{pmatrix}\n}.\n\\end{align*}",
     "\\boxed{\n\\begin{pmatrix} 0 & 3 \\\\ 0 & -1 \\end{pmatrix}\n}.\n\\end{align*}", 1),
    ("percent_gold_unboxed_solution",
     r"Let's assume the stock's value at the beginning of Monday is $100 . $ After losing $10 \%$ of "
     r"its value on Monday, the stock's value becomes $100 - 100 \cdot 10 \%=100 - 10 =90 . $ The overall "
     r"percent loss in value is $100 \% - 72 \%=28 \%$. Final Answer: The final answer is $28 \%$. I hope "
     r"it is correct. Note: The solution provided is incorrect. The correct approach is as follows: The "
     r"overall percent loss in value is $100 \% - 72 \%=28 \%$. Final Answer: The final answer is $28 \%$. "
     r"I hope it is correct. Note: The solution provided is incorrect. The correct approach is as follows:",
     r"If its initial value was $x$, after Monday, its value is $.9x$, and after a further $20\%$ loss, "
     r"its value becomes $.8\cdot .9x = .72x$, making for a total loss of $\boxed{28\%}$.", 1),
    ("text_and_between_numbers",
     r"Since $25<30<36$, we have $5<\sqrt{30}<6$. We also know that $7^2=49$, so $\sqrt{50}\approx7$. As "
     r"a result, $(5+7)<\sqrt{30}+\sqrt{50}<(6+7)$, so the sum is located between $\boxed{12\text{ and }13}$. "
     r"To be more precise, $\sqrt{50}>7$, but we're still able to say that $\sqrt{30}+\sqrt{50}<(6+7)$.",
     r"We have that \begin{align*} \sqrt{30 } + \sqrt{50 }&=\sqrt{30 } + \sqrt{25 \cdot2 } \ &\approx12.547. "
     r"\end{align*}Therefore, the graph of the sum $\sqrt{30 } + \sqrt{50 }$ is located between "
     r"$\boxed{12 $ and $13 }. $ Final Answer: The final answer is \"$12 $ and $13 $\". I hope it is correct.", 1),
    ("polar_point_doubled_backslashes", "$(3, \\frac{\\pi}{2})$",
     r"We have that $r = \\sqrt{0^2 + 3^2} = 3.$  Also, if we draw the line connecting the origin and "
     r"$(0,3),$ this line makes an angle of $\\frac{\\pi}{2}$ with the positive $x$-axis.\n\nTherefore, "
     r"the polar coordinates are $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}.$", 1),
    ("fraction_after_long_chain", r"$\frac{14}{3}$",
     r"$f(-2)+f(-1)+f(0)=\frac{3(-2)-2}{-2-2}+\frac{3(-1)-2}{-1-2}+\frac{3(0)-2}{0-2}=\frac{-8}{-4}"
     r"+\frac{-5}{-3}+\frac{-2}{-2}=2+\frac{5}{3}+1=\boxed{\frac{14}{3}}$", 1),
    ("text_name", r"$\text{Evelyn}$",
     r"Evelyn went almost as far as Carla in less than half the time that it took Carla, so Evelyn's "
     r"average speed is also greater than Carla's. Therefore, $\boxed{\text{Evelyn}}$ is our answer.", 1),
    ("degrees_after_vectors", r"$90^\circ$",
     r"Thus, the direction vector of the first line is $\begin{pmatrix} 2 \\ -12 \\ -3 \end{pmatrix}.$ "
     r"Note that \[\begin{pmatrix} 3 \\ 2 \\ -6 \end{pmatrix} \cdot \begin{pmatrix} 2 \\ -12 \\ -3 "
     r"\end{pmatrix} = 0.\]Hence, the angle between the lines is $\boxed{90^\circ}.$", 1),
    ("sqrt_in_align", r"$3\sqrt{13}$",
     r"We use the distance formula:  \begin{align*} \sqrt{(2 - (-4))^2 + ((-6) - 3)^2} &= \sqrt{6^2 + "
     r"(-9)^2}\\ & = \sqrt{36 + 81}\\ & = \sqrt{117} = \boxed{3\sqrt{13}}. \end{align*}", 1),
    ("fraction_in_display", r"$\frac{3}{56}$",
     r"In particular, \[q(8) = -\frac{(29 \cdot 8 + 27)(6)(5) \dotsm (1)}{40320} = -\frac{37}{8},\]so "
     r"\[p(8) = \frac{q(8) + 8}{8^2 - 1} = \boxed{\frac{3}{56}}.\]", 1),
    ("integer_count", "$2$",
     r"Of the two-digit perfect squares, only $4^2=16$ and $6^2=36$ end in $6$. Thus, there are "
     r"$\boxed{2}$ distinct possible values for $B$.", 1),
    ("mbox_unit_squared", r"$15\mbox{ cm}^2$",
     r"Therefore, the area of the triangle is $$\frac{1}{2}\times 3 \times 10 = \boxed{15\mbox{ cm}^2}.$$", 1),
    ("list_of_roots", "$-2,1$",
     r"Checking, we find that the only integer roots are $\boxed{-2,1}.$", 1),
    ("box_before_pmod", "$9$",
     r"Then, $129^{34}+96^{38} \equiv \boxed{9} \pmod{11}.$", 1),
    ("degrees_in_align", r"$90^\circ$",
     r"Therefore, \begin{align*} \angle BAC &= \angle BAD + \angle DAC \\ &= 50^\circ+40^\circ \\ &= "
     r"\boxed{90^\circ}. \end{align*}", 1),
    ("zero", "$0$",
     r"Hence, the degree of $p(x)$ (which is the constant polynomial 1) is $\boxed{0}.$", 1),
    ("base_five", "$204_5$",
     r"We may carry out long division in base 5 just as in base 10. for a quotient of $\boxed{204_5}$. "
     r"Note that in the above calculation we have used that $13_5$ divided by $2_5$ is $4_5$, which "
     r"follows from $4_5\times2_5=8_{10}=13_5$.", 1),
    ("triple", "$(6,31,-1)$",
     r"Then solving the system of equations, we find $(p,q,r) = \boxed{(6,31,-1)}.$", 1),
    ("plus_minus_sqrt", r"$1 \pm \sqrt{19}$",
     r"By the quadratic formula, $x = \boxed{1 \pm \sqrt{19}}.$", 1),
    ("plus_minus_coefficient", r"$3 \pm 2 \sqrt{2}$",
     r"By the quadratic formula, the roots are $x = \boxed{3 \pm 2 \sqrt{2}}.$", 1),
    ("set_with_plus_minus", r"$\{1\pm\sqrt{5},-2\}$",
     r"The roots of $P(x)$ are $-2$ and $1 \pm \sqrt{5}$, so the answer is $\boxed{\{1\pm\sqrt{5},-2\}}.$", 1),
    ("chain_of_inequalities", "$f(2) < f(1) < f(4)$",
     "Thus, $f(x)$ is an increasing function of $|x - 2|.$\n\n[asy]\nunitsize(1.5 cm);\n[/asy]\n\n"
     r"Hence, $\boxed{f(2) < f(1) < f(4)}.$", 1),
    ("trig_product", r"$2 \sin b \cos a$",
     "By sum-to-product,\n" r"\[\sin (a + b) - \sin (a - b) = \boxed{2 \sin b \cos a}.\]", 1),
    ("same_box_twice", r"$\frac{\pi r}{h+r}$",
     r"Thus we have $s = x+y+z = (z+x)+y = h+r$. The answer is $\boxed{\frac{\pi r}{h+r}}$.'], Pred: "
     r"['Since $rs = A$, where $r$ is the inradius, we have that the ratio is $\frac{\pi r}{s}$. Thus we "
     r"have $s = x+y+z = (z+x)+y = h+r$. The answer is $\boxed{\frac{\pi r}{h+r}}$.", 1),
    ("textnormal_unit", "$125$ miles", r"The distance is $\boxed{125\textnormal{ miles}}.$", 1),
    ("union_of_intervals", r"$[-1, -\frac{1}{2}) \cup (-\frac{1}{2}, 0) \cup (0, 1) \cup (1, \infty)$",
     r"The solution set is $\boxed{[-1, -\tfrac12) \cup (-\tfrac12, 0) \cup (0, 1) \cup (1, \infty)}.$", 1),
    ("sqrt_without_braces", r"$\sqrt{2}+\sqrt{5}$", r"The answer is $\boxed{\sqrt 2+\sqrt 5}$", 1),
    ("frac_without_braces_times_pi", r"$\frac{9}{4}\pi$", r"Therefore $\boxed{\frac94\pi}$.", 1),
    ("set_union_interval", r"x \in \boxed{\{-1\} \cup [0,7)}.$", r"x \in \boxed{\{-1\} \cup [0,7)}.$", 1),
    # ---- test_matrix_extraction
    ("r1_trace_box_then_answer", "$189$",
     "Alternatively, it's a different way of measuring, but given that Asymptote is accurate with "
     "coordinates, I think safe to go with 189.\n\n**Final Answer**\n\\boxed{189}\n</think>\n\nTo find the "
     "area of the trapezoid, we can use the coordinates of the vertices.\n\\[\n\\text{Area} = \\frac{1}{2} "
     "|378 - 0| = \\frac{1}{2} \\times 378 = 189\n\\]\n\nThus, the area of the trapezoid is "
     "\\(\\boxed{189}\\) square centimeters.", 1),
    # ---- test_math_extraction_edge_cases
    ("corrected_answer_is_the_last", "$[-3,2]$",
     r"Therefore, the domain of the function $\sqrt{6-x-x^2}$ is the interval between the roots, which "
     r"is $\boxed{[-3, 2]}$. Final Answer: The final answer is $[-3, 2]$. I hope it is correct. I apologize "
     r"for the mistake in the previous solution. Let me correct it. Therefore, the domain of the function "
     r"$\sqrt{6-x-x^2}$ is the interval outside the roots, which is $\boxed{(-\infty, -3] \cup [2, \infty)}$. "
     r"Final Answer: The final answer is $(-\infty, -3] \cup [2, \infty)$. I hope it is correct. <|im_start|>user", 0),
    ("dollars_thin_space_thousands", "$16386.20$",
     r"Rounded to the nearest cent, Paula's investment is worth $\boxed{\$16,\!386.20}$ at the end of the "
     r"5-year period. The answer is $16,\!386.20$. I apologize for the repetition in my previous responses. "
     r"Here is the correct solution: To find the value of her investment after 5 years, we can use the "
     r"formula for compound interest: \[A = P \left(1 + \frac{r}{n}\right)^{nt}\] where $A$ is the final "
     r"amount. In this", 1),
    ("brace_comma_thousands", "$14916$",
     r"Therefore, the smallest possible value for $N$ is $14{,}922$. Final Answer: The smallest possible "
     r"value of $N$ is $\boxed{14{,}916}$. I hope it is correct. <|im_start|>user", 1),
    ("pair_gold_doubled_backslashes", r"$\\left(\\frac{1}{5},\\frac{1}{6}\\right)$",
     r"Thus, $(p,q) = \boxed{\left( \frac{1}{5}, \frac{1}{6} \right)}.$ Final Answer: The final answer is "
     r"$\left( \frac{1}{5}, \frac{1}{6} \right)$. I hope it is correct. <|im_start|>user", 1),
    ("pair_gold_doubled_backslashes_2", r"$\\left(\\frac{4}{5},\\frac{1}{5}\\right)$",
     r"Thus, $(t,u) = \boxed{\left( \frac{4}{5}, \frac{1}{5} \right)}.$ Final Answer: The final answer is "
     r"$\left( \frac{4}{5}, \frac{1}{5} \right)$. I hope it is correct. <|im_start|>user", 1),
    ("dollars_decimal", "$16386.17$",
     r"Rounded to the nearest cent, Paula's investment is worth $\boxed{\$16386.17}$ after 5 years. I hope "
     r"it is correct. <|im_start|>user", 1),
    ("percent_gold_box_then_word",
     r"Let the percentage of people in Mathopolis who are children be $x$. So we have the equation "
     r"$x=\frac{1}{4}(1-x)$. Solving for $x$ yields $x=1/5$, or $\boxed{20}$ percent.",
     r"Therefore, the percentage of people in Mathopolis who are children is $$\frac{\frac{A }{4 }}"
     r"{\frac{5A }{4 }}=\frac{1 }{5 }=\boxed{20 \%}. $$ Final Answer: The final answer is $20 \%$. I hope "
     r"it is correct. Note: The solution provided assumes that the total number of people in Mathopolis "
     r"is the sum of adults and children.", 1),
    # ---- test_math_extraction_additional_cases
    ("wrong_point", r"$(\tfrac{27}{8},\tfrac{15}{8})$",
     r"Therefore, the point where the line intersects $\overline{CD}$ is $\boxed{(0, 0)}$. Final Answer: "
     r"The final answer is $(0, 0)$. I hope it is correct. <|im_start|>user", 0),
    ("pair_with_negative_doubled_backslashes", r"$\\left( \\frac{4}{3}, -\\frac{1}{3} \\right)$",
     r"Isolating $\overrightarrow{P},$ we find \[\overrightarrow{P} = \frac{4}{3} \overrightarrow{A} - "
     r"\frac{1}{3} \overrightarrow{B}.\]Thus, $(t,u) = \boxed{\left( \frac{4}{3}, -\frac{1}{3} \right)}.$", 1),
    ("decimal_box_and_final_answer", "$16386.16$",
     r"So, Paula's investment is worth approximately $\boxed{16386.16}$ dollars at the end of the 5 years. "
     r"Final Answer: The final answer is 16386.16.", 1),
    ("large_integer", "$5866608$",
     r"So, the sum of the integers on Camy's list is $\boxed{5866608}$. Final Answer: The final answer is "
     r"5866608. I hope it is correct.", 1),
    ("factorial_product", "$14400$",
     r"So, the total number of distinguishable ways is $1 \times 5! \times 5! = 120 \times 120 = "
     r"\boxed{14400}$. Final Answer: The final answer is 14400. I hope it is correct.", 1),
    ("percent_in_box", r"$20\%$",
     r"The percentage of children in Mathopolis is: $$\frac{|C|}{|A| + |C|} \times 100\% = \frac{1}{5} "
     r"\times 100\% = \boxed{20\%}$$ Final Answer: The final answer is $20\%$. I hope it is correct.", 1),
    ("plane_equation", "$x-2y+z-1=0$",
     r"The equation of the plane containing $L$ and the point $(1,1,1)$ is then "
     r"$$-1(x-1)+2(y-1)+1(z-1)=0\Rightarrow\boxed{x-2y+z-1=0}.$$ Final Answer: The final answer is "
     r"$x-2y+z-1=0$. I hope it is correct.", 1),
    ("final_answer_after_intermediate_boxes", "$10455$",
     r"First, let's calculate the interest earned on the first CD after six months: $0.04 \cdot 10,000 "
     r"\cdot \frac{1}{2} = \boxed{200}$ So, after six months, Dr. Zaius has $10,000 + $200 = $10,200. Now, "
     r"let's calculate the interest earned on the second CD after six months: $0.05 \cdot 10,200 \cdot "
     r"\frac{1}{2} = \boxed{255}$ So, after six months in the second CD, Dr. Zaius has $10,200 + $255 = "
     r"$10,455. Final Answer: The final answer is $10,455$. I hope it is correct.", 1),
    ("interval_in_display", r"$[-4,0]$",
     r"Thus, the values of \( k \) for which the quadratic has real roots are: \[ \boxed{[-4, 0]} \]", 1),
    ("wrong_base_three", r"$1112112_3$",
     r"Reading the remainders from last to first, we find: \[ 1121_{10} = 1112122_3 \] Thus, the product "
     r"\( ab \) expressed in the base-three number system is \(\boxed{1112122_3}\).", 0),
    ("choice_letter_in_text", r"\(\boxed{\text{C}}\).", r"$\boxed{\text{(C)}}.$", 1),
    ("thin_space_thousands", r" So the answer is: \[ \boxed{11111111100} \]", r"is $\boxed{11,\! 111,\! 111,\! 100}$", 1),
    ("thin_space_thousands_2", r" So the answer is: \[ \boxed{32349} \]", r"is $\boxed{32,\! 349}$", 1),
    ("comma_space_is_a_list", r" So the answer is: \[ \boxed{32349} \]", r"is $\boxed{32, 349}$", 0),
    ("union_domain",
     r"Thus, the domain of the function \( f(x) \) is: \[ \boxed{(2, 12) \cup (12, 102)} \]",
     r"Thus, the answer is $x \in \boxed{(2,12) \cup (12,102)}$", 1),
    ("gold_two_boxes", r"$\boxed{1}\boxed{2}$", r"$\boxed{1,2}$", 1),
    ("pred_two_boxes_after_think",
     r"Then $n^2 + 3n - 2 = 2n,$ or $n^2 + n - 2 = 0.$ This factors as $(n - 1)(n + 2) = 0,$ so the "
     r"solutions are $n = \boxed{1,-2}.$",
     r"<think> Okay, so I have this functional equation to solve. So the solutions are \( n = 1 \) and "
     r"\( n = -2 \). Wait, so I think I can be confident the solutions are 1 and -2. **Final Answer** The "
     r"integers are \boxed{-2} and \boxed{1}. </think> Given the functional equation, we find "
     r"\[ f(x) = \frac{1}{2}x^2 + \frac{3}{2}x - 1. \] Solving this quadratic equation, we find the roots: "
     r"\[ n = 1 \quad \text{and} \quad n = -2. \] Thus, the integers \( n \) such that \( f(n) = n \) "
     r"are: \[ \boxed{-2} \quad \text{and} \quad \boxed{1}. \]", 1),
]

# Cases we decide differently from Math-Verify, with the reason (also in docs/grading.md).
DISAGREEMENTS: dict[str, str] = {}


def _record(gold: str) -> dict:
    if "\\boxed" in gold or len(gold) > 150:
        return {"problem": "p", "solution": gold}
    return {"problem": "p", "answer": gold}


@pytest.fixture(scope="module")
def verdicts() -> dict[str, bool]:
    task = get("math")
    return {name: task.grade(_record(gold), pred).correct for name, gold, pred, _ in CASES}


def test_every_case_has_a_boxed_prediction_and_a_unique_name():
    assert all("\\boxed" in pred for _, _, pred, _ in CASES)
    assert len({name for name, *_ in CASES}) == len(CASES) == 59


@pytest.mark.parametrize("name, gold, pred, expected", CASES, ids=[c[0] for c in CASES])
def test_math_verify_case(name, gold, pred, expected, verdicts):
    if name in DISAGREEMENTS:
        assert verdicts[name] != bool(expected), f"{name} now agrees with Math-Verify: drop it from DISAGREEMENTS"
    else:
        assert verdicts[name] == bool(expected)


def test_agreement_with_math_verify_is_at_least_95_percent(verdicts):
    agree = sum(verdicts[name] == bool(expected) for name, _, _, expected in CASES)
    print(f"Math-Verify boxed cases: {agree}/{len(CASES)} agree")
    assert agree / len(CASES) >= 0.95
    assert len(CASES) - agree == len(DISAGREEMENTS)


# Cases from their tests that extract LaTeX only (the others also extract plain expressions).
_LATEX_ONLY = {name for name, *_ in CASES[:1] + CASES[5:35]}


def test_the_shortened_texts_keep_math_verifys_verdict():
    """math-verify, called as their tests call it, still gives the expected verdict on our texts."""
    math_verify = pytest.importorskip("math_verify")
    latex = math_verify.LatexExtractionConfig(boxed_match_priority=0)
    wrong = []
    for name, gold, pred, expected in CASES:
        config = [latex] if name in _LATEX_ONLY else [latex, math_verify.ExprExtractionConfig()]
        verdict = math_verify.verify(math_verify.parse(gold, config), math_verify.parse(pred, config))
        if int(verdict) != expected:
            wrong.append(name)
    assert wrong == []
