"""DistributedDataParallel on CPU: two gloo processes end with identical weights.

Each process is started the way torchrun starts it (RANK, WORLD_SIZE,
MASTER_ADDR/PORT in the environment) and calls :func:`vqlearn.train.train`,
which joins the group, shards the data, all-reduces gradients and EMA codebook
statistics, broadcasts k-means initialisation and dead-code restarts from
rank 0, averages the discriminator's gradients, and lets only rank 0 write.
"""

import hashlib
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

VQVAE_EMA = ["model.dim=16", "model.num_codes=32", "quantizer.kind=ema", "quantizer.init=kmeans",
             "quantizer.init_vectors=256", "quantizer.restart_every=2"]
VQGAN = ["model.family=vqgan", "model.num_codes=16", "model.embed_dim=8",
         "model.ddconfig={ch: 16, ch_mult: [1, 2], num_res_blocks: 1, attn_resolutions: [], z_channels: 8, "
         "resolution: 16, num_groups: 8}", "data.name=photos", "data.image_size=16", "loss.disc_start=2",
         "loss.perceptual_weight=0", "loss.disc_ndf=8", "loss.disc_num_layers=2", "quantizer.restart_every=2"]
COMMON = ["train.batch_size=8", "train.log_every=2", "train.eval_batches=1", "train.sample_every=0",
          "train.ckpt_every=0"]
STEPS = 4


def digest(module: torch.nn.Module) -> str:
    """SHA-256 of every tensor in a state dict, in key order."""
    h = hashlib.sha256()
    for key, value in module.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def worker(rank: int, world_size: int, ports: list[int], out_dir: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1")
    torch.set_num_threads(1)
    from vqlearn.train import train

    # Two runs, each joining (and leaving) its own process group, on a fresh port each.
    for (name, sets), port in zip((("vqvae", VQVAE_EMA), ("vqgan", VQGAN)), ports):
        os.environ["MASTER_PORT"] = str(port)
        result = train(None, os.path.join(out_dir, name), max_steps=STEPS, progress=False,
                       overrides=[*sets, *COMMON])
        hashes = [digest(result.model)]
        if name == "vqgan":
            hashes.append(digest(result.loss.discriminator))
        with open(os.path.join(out_dir, f"{name}.rank{rank}.txt"), "w") as f:
            f.write(" ".join(hashes) + f" {result.step} {len(result.history)}")


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="needs torch.distributed with gloo")
def test_two_cpu_processes_end_identical(tmp_path):
    mp.spawn(worker, args=(2, free_ports(2), str(tmp_path)), nprocs=2, join=True)
    for name in ("vqvae", "vqgan"):
        rank0 = (tmp_path / f"{name}.rank0.txt").read_text().split()
        rank1 = (tmp_path / f"{name}.rank1.txt").read_text().split()
        assert rank0 == rank1, name
        assert rank0[-2] == str(STEPS)
        # only rank 0 writes: one metrics line per logging interval, one checkpoint
        lines = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        assert len(lines) == STEPS // 2
        assert (tmp_path / name / "last.ckpt").is_file()


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="needs torch.distributed with gloo")
def test_a_rank_that_stops_answering_ends_the_run_with_one_line(tmp_path):
    """SIGSTOP rank 1 mid-run: rank 0 ends within train.dist_timeout with one line naming rank 1, exit 1."""
    import signal
    import subprocess
    import sys
    import time

    port = free_ports(1)[0]
    command = [sys.executable, "-m", "vqlearn.train", "-", "--out", str(tmp_path / "run"), "--no-progress",
               "--max-steps", "100000"]
    config = "{data: {name: mnist}, model: {dim: 8, num_codes: 16}, train: {batch_size: 8, dist_timeout: 3, " \
             "log_every: 1, eval_batches: 0, sample_every: 0, ckpt_every: 0}}"
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(config)
    command[3] = str(config_path)
    ranks = []
    for rank in (0, 1):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(port), OMP_NUM_THREADS="1")
        ranks.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        metrics = tmp_path / "run" / "metrics.jsonl"
        deadline = time.time() + 120
        while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
            assert time.time() < deadline and ranks[0].poll() is None, "training did not start"
            time.sleep(0.2)
        ranks[1].send_signal(signal.SIGSTOP)
        stopped_at = time.time()
        _, stderr = ranks[0].communicate(timeout=60)
        waited = time.time() - stopped_at
    finally:
        for process in ranks:
            process.kill()
            process.wait()
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert ranks[0].returncode == 1, stderr
    assert "Traceback" not in stderr, stderr
    assert lines[-1].startswith("error: rank 0 of 2: rank 1 stopped answering"), stderr
    assert "train.dist_timeout=3 s" in lines[-1], stderr
    assert waited < 3 + 30, waited
