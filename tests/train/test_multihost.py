"""Two processes on localhost (jax.distributed + gloo CPU collectives), each reading its own
shard of the data, train to the same parameters as one process with the whole batch."""

import subprocess

import pytest

import train_runs as runs

# Padded rows (no packing) so that the global batch of every step holds the same examples
# whether one process reads them all or two processes read alternate ones; max_length equals
# the length bucket of these records so both layouts pad identically.
COMMON = ("--config.data.packing=False", "--config.data.max_length=16",
          "--config.train.num_steps=6", "--config.checkpoint.every=3",
          "--config.train.batch_size=4")


def test_two_processes_end_with_the_single_process_parameters(tmp_path):
    data = runs.write_arithmetic_data(tmp_path / "train.jsonl", n=64)
    single = tmp_path / "single"
    result = runs.run(single, f"--config.data.train={data}", *COMMON)
    assert result.returncode == 0, result.stderr[-3000:]

    multi = tmp_path / "multi"
    port = runs.free_port()
    processes = [
        subprocess.Popen(runs.command(multi, f"--config.data.train={data}", *COMMON,
                                      "--config.distributed.num_processes=2",
                                      f"--config.distributed.process_id={i}",
                                      f"--config.distributed.coordinator_address=127.0.0.1:{port}",
                                      "--config.distributed.cpu_collectives=gloo"),
                         env=runs.env(devices=1), cwd=runs.REPO, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for i in range(2)]
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=240))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for process, (_, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-4000:]

    runs.assert_same_params(runs.exported_params(multi), runs.exported_params(single), atol=2e-6)
    # Parameters after Adam are ~ lr * sign(g) and blind to the gradient's scale: the logged
    # loss and gradient norm of every step must agree too.
    multi_metrics, single_metrics = runs.train_metrics(multi), runs.train_metrics(single)
    assert sorted(multi_metrics) == sorted(single_metrics) == list(range(1, 7))
    for step, expected in single_metrics.items():
        for key in ("loss", "grad_norm", "loss_tokens"):
            assert multi_metrics[step][key] == pytest.approx(expected[key], rel=1e-5), (step, key)
    # Each process read its own half of every global batch; together they read the same
    # examples per step as the single process.
    order = runs.data_order(single)
    halves = [runs.data_order(multi, process=i) for i in range(2)]
    for step, ids in order.items():
        assert not set(halves[0][step]) & set(halves[1][step])
        assert sorted(halves[0][step] + halves[1][step]) == sorted(ids)
    # Each process checkpointed its own data-iterator position.
    data_dir = multi / "checkpoints" / "6" / "data"
    assert sorted(p.name for p in data_dir.iterdir() if p.suffix == ".json") == [
        "process_0-of-2.json", "process_1-of-2.json"]
