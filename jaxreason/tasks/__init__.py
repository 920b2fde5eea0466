"""Tasks: prompt formatting, answer extraction and safe grading per dataset family. No JAX.

    task = jaxreason.tasks.get("math")                 # or "gsm8k", "countdown", "arc", "srl"
    task = jaxreason.tasks.get("countdown", reward="astro")   # +1 / -1
    grade = task.grade(record, completion)             # Grade(reward, correct, extracted, reason)
    grades = grade_batch(task, records, completions, item_timeout_s=10, total_timeout_s=120)

Records are the datasets' own records as read from their files (`task.load_records(path)`).
"""

from jaxreason.tasks.base import Grade, RewardConfig, Task, Verdict, get, names, register
from jaxreason.tasks.grading_pool import GradingPool, grade_batch

# Importing the family modules registers them.
from jaxreason.tasks.arc import ArcTask
from jaxreason.tasks.countdown import CountdownTask
from jaxreason.tasks.countdown_solver import Solution, generate_instances, solve
from jaxreason.tasks.gsm8k import GSM8KTask
from jaxreason.tasks.math_task import MathTask
from jaxreason.tasks.srl import SRLTask

__all__ = [
    "ArcTask",
    "CountdownTask",
    "GSM8KTask",
    "Grade",
    "GradingPool",
    "MathTask",
    "RewardConfig",
    "SRLTask",
    "Solution",
    "Task",
    "Verdict",
    "generate_instances",
    "get",
    "grade_batch",
    "names",
    "register",
    "solve",
]
