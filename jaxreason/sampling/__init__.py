"""Batched sampling with a KV cache: the engine under MCTS, RPO, GRPO and evaluation."""

from jaxreason.sampling.params import GeneratedBatch, SampleResult, SamplingParams
from jaxreason.sampling.sampler import Sampler, completion_text

__all__ = ["GeneratedBatch", "SampleResult", "Sampler", "SamplingParams", "completion_text"]
