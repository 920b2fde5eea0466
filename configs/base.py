"""Shared defaults of every recipe. A recipe is `get_config()` that edits this one.

Any field can be set from the command line: `--config.optim.learning_rate=3e-6`. Unknown keys
and values of the wrong type are errors that name the key. Fields that default to None are
typed placeholders (`placeholder(str)` accepts a string or None).
"""

from ml_collections import ConfigDict
from ml_collections.config_dict import placeholder


def get_config() -> ConfigDict:
    c = ConfigDict()
    c.trainer = "sft"  # training loop to run (jaxreason.train registry: sft | grpo | pipeline)
    c.seed = 0  # seeds parameter init, data order, generated data and sampling

    c.model = ConfigDict()
    c.model.path = placeholder(str)  # local Hugging Face checkpoint dir (config.json + safetensors)
    c.model.preset = placeholder(str)  # or a named architecture, random init: "llama-tiny", "llama-3.1-70b" (model/architectures.py)
    c.model.overrides = ConfigDict()  # preset fields to change (hidden_size, num_layers, ...)
    c.model.dtype = "float32"  # compute dtype of activations ("bfloat16" on GPU / TPU)
    c.model.param_dtype = "float32"  # storage dtype of parameters and optimizer moments
    c.model.remat_policy = "none"  # activation recomputation: none | full | dots | dots_no_batch
    c.model.scan_layers = False  # run the layer stack under lax.scan (fast compiles, deep models)
    c.model.lora = ConfigDict()  # low-rank adapters (docs/lora.md); only they train when on
    c.model.lora.rank = 0  # adapter rank r (0: off, every parameter trains)
    c.model.lora.alpha = 16.0  # adapter output scaled by alpha / rank
    c.model.lora.targets = "q,k,v,o,gate,up,down"  # projections with adapters ("all" = these 7)
    c.model.lora.quantization = "none"  # frozen base storage: none (compute dtype) | int8 | nf4
    c.model.lora.quantization_block = 64  # absmax block length of int8 / nf4 (QLoRA)

    c.tokenizer = ConfigDict()
    c.tokenizer.path = placeholder(str)  # tokenizer directory (default: model.path's tokenizer)
    c.tokenizer.train_vocab_size = 0  # > 0: train a byte-level BPE of this size on the data

    c.mesh = ConfigDict()
    c.mesh.data = 1  # data-parallel replicas
    c.mesh.fsdp = -1  # parameter / optimizer sharding (-1: all remaining devices)
    c.mesh.tensor = 1  # tensor parallelism over heads / MLP / vocabulary

    c.data = ConfigDict()
    c.data.train = placeholder(str)  # training records: .jsonl / .json / .parquet / datasets dir
    c.data.generator = placeholder(str)  # or records generated in-process ("countdown")
    c.data.generator_options = ConfigDict()  # the generator's options (counts, ranges)
    c.data.task = placeholder(str)  # records are this task's: prompt and completion come from it
    c.data.prompt_field = "prompt"  # record field of the prompt (string or chat messages)
    c.data.completion_field = "completion"  # record field of the target completion
    c.data.chat = False  # render with the tokenizer's chat template
    c.data.loss_on = "completion"  # "completion" or "all" tokens (ASTRO trains on all)
    c.data.add_bos = True  # plain format: prepend the tokenizer's BOS
    c.data.add_eos = True  # append EOS so the model learns to stop
    c.data.max_length = 1024  # training positions per row (examples are truncated to fit)
    c.data.packing = True  # pack several examples per row (no attention across them)
    c.data.shuffle = True  # shuffle records (re-shuffled each epoch)
    c.data.num_epochs = placeholder(int)  # passes over the data (None: repeat forever)
    c.data.num_threads = 2  # Grain threads tokenizing ahead of the step

    c.train = ConfigDict()
    c.train.loss = "sft"  # objective (jaxreason.losses registry)
    c.train.averaging = "token"  # "token": mean over loss tokens; "sequence": mean of examples
    c.train.batch_size = 32  # global rows per step (all processes together)
    c.train.num_microbatches = 1  # gradient accumulation: rows are split into this many parts
    c.train.num_steps = 1000  # optimizer steps (<= 0: one pass over data.num_epochs)
    c.train.logprob_chunk_size = 512  # sequence positions per chunk of the vocabulary projection

    c.optim = ConfigDict()
    c.optim.learning_rate = 1e-5  # peak learning rate
    c.optim.schedule = "cosine"  # decay after warmup: cosine | linear | constant
    c.optim.warmup_steps = 0  # linear warmup from 0
    c.optim.final_lr_ratio = 0.0  # learning rate at the last step, as a fraction of the peak
    c.optim.weight_decay = 0.0  # AdamW decoupled weight decay (not on norms and biases)
    c.optim.b1 = 0.9  # Adam beta1
    c.optim.b2 = 0.95  # Adam beta2
    c.optim.eps = 1e-8  # Adam epsilon
    c.optim.grad_clip = 1.0  # clip the global gradient norm to this (0: off)

    c.checkpoint = ConfigDict()
    c.checkpoint.every = 500  # save every N steps (and always at the end and on SIGTERM)
    c.checkpoint.max_to_keep = 3  # checkpoints kept in <workdir>/checkpoints
    c.checkpoint.async_save = True  # write checkpoints in the background
    c.checkpoint.export_hf = True  # write the final model to <workdir>/export (HF format)
    c.checkpoint.export_dtype = placeholder(str)  # dtype of the export (default: param_dtype)

    c.log = ConfigDict()
    c.log.every = 10  # one-line summary every N steps (metrics.jsonl gets every step)
    c.log.tensorboard = True  # TensorBoard event files in <workdir>/tensorboard
    c.log.progress = True  # tqdm progress bar
    c.log.data_order = False  # log each step's example ids to <workdir>/data_order.p*.jsonl

    c.eval = ConfigDict()
    c.eval.task = placeholder(str)  # task that grades held-out records (default: data.task)
    c.eval.data = placeholder(str)  # held-out records (default: the generator's held-out set)
    c.eval.num_examples = 0  # grade at most this many (0: all)
    c.eval.every = 0  # evaluate every N steps (0: only at the end)
    c.eval.max_new_tokens = 256  # generation budget per answer (greedy)
    c.eval.batch_size = 64  # prompts per generation call
    c.eval.grading_workers = placeholder(int)  # grading processes (0: grade in this process)

    c.grpo = ConfigDict()  # online RL (trainer "grpo", jaxreason/algorithms/grpo.py)
    c.grpo.task = placeholder(str)  # task that formats prompts and grades (default: data.task)
    c.grpo.reward = placeholder(str)  # reward preset: binary (1/0) | astro (+1/-1) | tinyzero
    c.grpo.reward_fn = placeholder(str)  # or a custom "module:function"(records, completions)
    c.grpo.reward_model = placeholder(str)  # or a reward model's export: its score is the reward
    c.grpo.prompts_per_step = 16  # prompts per step, all processes together
    c.grpo.group_size = 8  # samples per prompt (G)
    c.grpo.max_prompt_tokens = 256  # prompt budget (a longer prompt is an error)
    c.grpo.max_new_tokens = 512  # completion budget
    c.grpo.temperature = 1.0  # sampling temperature
    c.grpo.top_p = 1.0  # nucleus sampling (1: off)
    c.grpo.top_k = 0  # top-k sampling (0: off)
    c.grpo.stop = placeholder(str)  # stop strings, separated by "|"
    c.grpo.epsilon_low = 0.2  # ratio clip below 1
    c.grpo.epsilon_high = 0.2  # ratio clip above 1 (DAPO clip-higher: 0.28)
    c.grpo.beta = 0.0  # k3 KL to the starting model (0: no reference model in memory)
    c.grpo.normalizer = "token"  # token (DAPO) | sequence (GRPO) | constant (Dr. GRPO)
    c.grpo.advantage = "grpo"  # estimator (jaxreason.advantages registry): grpo | dr_grpo | rloo
    c.grpo.normalize_std = True  # with advantage "grpo": False = "dr_grpo" (older recipes' key)
    c.grpo.mask_truncated = False  # no loss on completions cut off by max_new_tokens
    c.grpo.dynamic_sampling = False  # drop groups with equal rewards, sample more prompts
    c.grpo.min_group_std = 0.0  # with dynamic sampling: keep groups whose reward std > this
    c.grpo.max_sampling_rounds = 3  # prompt draws per step at most (dynamic sampling)
    c.grpo.num_iterations = 1  # passes over each batch (mu)
    c.grpo.num_minibatches = 1  # optimizer updates per pass
    c.grpo.grading_workers = placeholder(int)  # grading processes (0: in this process)
    c.grpo.grading_timeout_s = 10.0  # per-completion grading time limit

    c.ppo = ConfigDict()  # PPO with a critic (trainer "ppo", jaxreason/algorithms/ppo.py, docs/ppo.md)
    # rollouts (task, prompts_per_step, group_size = samples per prompt, budgets, temperature,
    # stop, epsilon_low / epsilon_high = policy clip) come from the grpo section
    c.ppo.kl_coef = 0.001  # KL-to-reference penalty in the per-token reward (0: no reference model)
    c.ppo.kl_estimator = "kl"  # kl (log pi - log pi_ref) | abs | mse | low_var_kl (k3)
    c.ppo.kl_controller = "fixed"  # fixed | adaptive (Ziegler et al. 2019: kl_coef is the start value, steered toward kl_target)
    c.ppo.kl_target = 6.0  # adaptive: the KL per completion (summed over its tokens) to hold
    c.ppo.kl_horizon = 10000  # adaptive: completions over which the coefficient may change by e^(+-0.2)
    c.ppo.old_logprobs = "recompute"  # pi_old's log-probs: recompute (a policy forward in the pre-step) | sampler (the sampler's own, as TRL's PPO; no forward, decode-path numerics)
    c.ppo.gamma = 1.0  # GAE discount
    c.ppo.lam = 1.0  # GAE lambda
    c.ppo.whiten_advantages = True  # normalize advantages over the batch's completion tokens
    c.ppo.value_clip = 0.5  # clip of the critic's change from its values at sampling time
    c.ppo.value_coef = 1.0  # weight of the value loss (0.5 (V - R)^2) beside the policy loss
    c.ppo.entropy_coef = 0.001  # entropy bonus
    c.ppo.ppo_epochs = 1  # passes over each batch
    c.ppo.num_minibatches = 1  # optimizer updates per pass
    c.ppo.critic_learning_rate = 1e-5  # the critic's peak learning rate (actor: optim.learning_rate)
    c.ppo.critic_warmup_steps = 0  # steps that train only the critic (actor learning rate 0)
    c.ppo.critic_path = placeholder(str)  # value model dir to start the critic from (default: the policy + a fresh head)
    c.ppo.critic_head_std = 0.0  # init of a fresh head's kernel: N(0, std); 0: zeros

    c.sampling = ConfigDict()  # every sampler of a run (rollouts, sample / search stages)
    c.sampling.max_kv_cache_bytes = 0  # per-device KV-cache budget of one call; bigger batches run in sequential chunks, same samples (0: no limit)

    c.sample = ConfigDict()  # data stage "sample": graded completions of the current model
    c.sample.task = placeholder(str)  # task that formats prompts and grades (default: data.task)
    c.sample.n = 4  # completions per prompt
    c.sample.temperature = 1.0  # sampling temperature (0: greedy)
    c.sample.top_p = 1.0  # nucleus sampling (1: off)
    c.sample.top_k = 0  # top-k sampling (0: off)
    c.sample.max_new_tokens = 256  # completion budget
    c.sample.max_prompt_tokens = 512  # longer prompts are skipped (counted in the summary)
    c.sample.stop = placeholder(str)  # stop strings, separated by "|"
    c.sample.num_prompts = 0  # sample the first N training records (0: all)
    c.sample.batch_size = 64  # prompts per sampling call (one resumable part file each)
    c.sample.max_correct_per_prompt = 0  # distinct correct completions kept per prompt (0: all)
    c.sample.grading_workers = placeholder(int)  # grading processes (0: in this process)
    c.sample.grading_timeout_s = 10.0  # per-completion grading time limit

    c.suite = ConfigDict()  # trainer "evaluate" (launch/eval.py): benchmarks, see configs/eval/
    c.suite.benchmarks = ""  # comma-separated benchmark names; each has a suite.<name> section

    c.dpo = ConfigDict()  # preference training (trainer "dpo", jaxreason/algorithms/dpo.py)
    c.dpo.loss = "dpo"  # pair objective: dpo | dpo_nll (Iterative RPO) | ipo | orpo
    c.dpo.beta = 0.1  # DPO temperature beta (IPO: its tau)
    c.dpo.alpha = 1.0  # dpo_nll: weight of the chosen response's per-token NLL
    c.dpo.label_smoothing = 0.0  # dpo / dpo_nll: conservative-DPO label noise (0: plain DPO)
    c.dpo.nll_on_prompt = False  # dpo_nll: divide the NLL by prompt + response tokens (RPO v1)
    c.dpo.orpo_lambda = 0.1  # orpo: weight of the odds-ratio term
    c.dpo.chosen_field = "chosen"  # pair record field of the preferred response
    c.dpo.rejected_field = "rejected"  # pair record field of the other response
    c.dpo.max_prompt_tokens = 0  # prompt budget; a longer prompt is an error (0: none)
    c.dpo.skip_invalid_pairs = False  # drop and count invalid pairs instead of failing

    c.pairs = ConfigDict()  # data stage "pairs": Iterative RPO preference pairs
    c.pairs.n = 8  # samples per prompt (N); other sampling settings come from `sample`
    c.pairs.k = 4  # at most K (winner, loser) pairs per prompt, drawn without replacement
    c.pairs.temperatures = "1.0"  # temperature per iteration, comma-separated (last repeats)
    c.pairs.require_format = True  # a winner needs a well-formed answer (unparseable: loser)

    c.srl = ConfigDict()  # data stage "srl_steps": SRL step instances (docs/srl.md)
    c.srl.trajectories = placeholder(str)  # expert trajectories file (else data.train records)
    c.srl.source = "trajectories"  # trajectories | countdown (solver steps of {nums, target})
    c.srl.parser = "auto"  # solution text -> steps: auto|numbered|step|bold|blank|lines
    c.srl.solution_field = "solution"  # record field of a solution text (when no "steps")
    c.srl.k_start = 2  # first target step k (1-based); 2: the first step is always context
    c.srl.k_end = 0  # last target step (<= 0: counted from N, 0 = N)
    c.srl.val_fraction = 0.1  # validation share, split by whole trajectory
    c.srl.sft_mix = False  # also write sft.jsonl: step + end-to-end reference completions

    c.hard_split = ConfigDict()  # data stage "hard_split": records the model never solves
    c.hard_split.max_correct = 0  # hard: at most this many of sample.n samples correct
    c.hard_split.held_out_fraction = 0.25  # share of hard records set aside for evaluation

    c.search = ConfigDict()  # data stage "search": step-level MCTS (jaxreason/search, docs/astro.md)
    c.search.task = placeholder(str)  # task that formats prompts and grades (default: data.task)
    c.search.reward = "astro"  # reward preset of terminals and rollouts (+1 / -1)
    c.search.k = 4  # candidate steps sampled per expansion (distinct ones become children)
    c.search.rollouts = 4  # M full rollouts per new node; its value R is their mean reward
    c.search.iterations = 16  # selections per tree
    c.search.max_depth = 4  # steps at most (a node this deep is terminal)
    c.search.c_puct = 1.0  # PUCT exploration weight
    c.search.delimiter = "\n"  # step stop strings, separated by "|" ("\n\n" for math)
    c.search.max_step_tokens = 32  # token budget of one step
    c.search.max_rollout_tokens = 128  # token budget of one rollout
    c.search.temperature = 1.0  # sampling of steps and rollouts
    c.search.top_p = 1.0  # nucleus sampling (1: off)
    c.search.num_problems = 0  # search the first N training records (0: all)
    c.search.batch_size = 64  # problems searched together (one resumable unit)
    c.search.max_leaves_per_call = 0  # leaves per device call (0: all; 1: one at a time)
    c.search.grading_workers = placeholder(int)  # grading processes (0: in this process)
    c.search.grading_timeout_s = 10.0  # per-completion grading time limit

    c.clone = ConfigDict()  # data stage "clone": trees -> ASTRO and Direct SFT records
    c.clone.trees = placeholder(str)  # tree file ("stage:search.trees")
    c.clone.num_direct = 1  # traces with k = 0 per tree
    c.clone.num_search = 3  # traces with k drawn from clone.ks per tree
    c.clone.ks = "0,1,2"  # incorrect branches per search trace (lowered to what a tree has)
    c.clone.positive_q = placeholder(float)  # Q above which a step gets a positive reflection

    c.reward_model = ConfigDict()  # trainer "reward_model" (jaxreason/algorithms/reward_model.py)
    c.reward_model.kind = "prm"  # orm (BCE per solution) | bt (preference pairs) | prm (per step)
    c.reward_model.head_std = 0.0  # init of the scalar head's kernel: 0 (zero) or N(0, std)
    c.reward_model.aggregation = "last"  # step scores -> solution score: last | min | product
    c.reward_model.delimiter = "\n"  # step stop strings when scoring, "|"-separated (prm)

    c.prm_labels = ConfigDict()  # data stage "prm_labels": search trees -> PRM step records
    c.prm_labels.trees = placeholder(str)  # tree file ("stage:search.trees")
    c.prm_labels.labels = "soft"  # soft (success rate p) | hard (1 if p > hard_threshold)
    c.prm_labels.value = "q"  # the node's success estimate: q (its Q) | rollouts (its own R)
    c.prm_labels.hard_threshold = 0.0  # hard labels: 1 when p exceeds this (0: any success)
    c.prm_labels.paths = "leaves"  # records per root-to-leaf path: leaves | terminal (solutions)
    c.prm_labels.held_out_share = 0.2  # share of trees (by id) kept out for the held-out AUC

    c.rm_eval = ConfigDict()  # data stage "rm_eval": a reward model's ranking and test-time use
    c.rm_eval.reward_model = placeholder(str)  # reward-model directory ("stage:prm.model")
    c.rm_eval.steps = placeholder(str)  # held-out step records ("stage:prm_labels.steps_held_out")
    c.rm_eval.num_problems = 0  # held-out problems for best-of-N vs beam search (0: none)
    c.rm_eval.ns = "4,8,16"  # best-of-N sample counts, comma-separated
    c.rm_eval.beams = "2x2,4x4"  # step beam search widths x branching, comma-separated
    c.rm_eval.beam_rounds = 8  # steps at most per beam
    c.rm_eval.step_tokens = 24  # token budget of one step
    c.rm_eval.max_new_tokens = 160  # token budget of one best-of-N sample
    c.rm_eval.temperature = 1.0  # sampling of solutions and steps
    c.rm_eval.batch_rows = 64  # rows per reward-model forward pass

    c.step_data = ConfigDict()  # data stage "step_data": Countdown warm-up steps + tokenizer
    c.step_data.random_share = 0.5  # share of warm-up solutions that are random legal steps
    c.step_data.num_warmup = 0  # warm-up records from the first N training records (0: all)

    c.pipeline = ConfigDict()  # trainer "pipeline": stages run in order (docs/pipelines.md)
    c.pipeline.stages = "sft,grpo"  # stages in order; "(a,b)x3" repeats a group 3 times
    c.pipeline.inherit_model = True  # start from the latest model exported by an earlier stage
    c.pipeline.iteration = 0  # set by the pipeline: the stage's iteration in a group (1-based)
    c.stages = ConfigDict()  # per stage: stages.<name>.<section>.<key>, stages.<name>.trainer
    c.stages.sft = ConfigDict()
    c.stages.grpo = ConfigDict()
    c.stages.pairs = ConfigDict()
    c.stages.dpo = ConfigDict()

    c.distributed = ConfigDict()
    c.distributed.auto = False  # jax.distributed.initialize() with discovered arguments (pods)
    c.distributed.coordinator_address = placeholder(str)  # "host:port" of process 0
    c.distributed.num_processes = placeholder(int)  # processes in the run
    c.distributed.process_id = placeholder(int)  # this process's index
    c.distributed.cpu_collectives = placeholder(str)  # "gloo" for multi-process CPU runs
    return c


def use_tiny_llama(c: ConfigDict) -> None:
    """The CPU recipes' model: preset `llama-tiny` at 4 layers, hidden 128, 4 query / 2 kv heads
    of 32, MLP 352 (0.87M parameters), with a 1024-token BPE trained on the data at start-up."""
    c.model.preset = "llama-tiny"
    c.model.overrides.hidden_size = 128
    c.model.overrides.intermediate_size = 352
    c.model.overrides.num_layers = 4
    c.model.overrides.num_heads = 4
    c.model.overrides.num_kv_heads = 2
    c.model.overrides.head_dim = 32
    c.tokenizer.train_vocab_size = 1024
