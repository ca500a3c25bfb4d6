"""Two CPU ranks under torchrun (gloo): disjoint data across ranks and workers; DDP keeps weights equal."""

import json
import os
import subprocess
import sys

import pytest
from safetensors import safe_open
from safetensors.torch import load_file

WORKER = os.path.join(os.path.dirname(__file__), "rank_worker.py")


def torchrun(mode, out):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", WORKER, mode, str(out)]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_stream_is_disjoint_across_ranks_and_workers(tmp_path):
    torchrun("data", tmp_path)
    a, b = (json.load(open(tmp_path / f"data-{r}.json")) for r in (0, 1))
    assert len(a["indices"]) == len(b["indices"]) == 24
    assert not set(a["indices"]) & set(b["indices"])  # no sample twice across ranks
    assert len(set(a["indices"])) == 24 and len(set(b["indices"])) == 24  # nor across a rank's two workers
    assert sorted(a["indices"] + b["indices"]) == list(range(48))  # and none skipped
    assert not set(a["keys"]) & set(b["keys"])


@pytest.mark.slow
def test_ddp_ranks_keep_equal_weights(tmp_path):
    torchrun("train", tmp_path)
    with safe_open(str(tmp_path / "weights-0.safetensors"), "pt") as f:
        assert f.metadata()["world"] == "2"
    w0, w1 = load_file(tmp_path / "weights-0.safetensors"), load_file(tmp_path / "weights-1.safetensors")
    ckpts = sorted((tmp_path / "run" / "checkpoints").glob("step-*/model.safetensors"))
    first, last = load_file(ckpts[0]), load_file(ckpts[-1])
    assert all((w0[k] == w1[k]).all() for k in w0)  # gradients were averaged: the ranks never diverged
    assert all((w0[k] == last[k]).all() for k in w0)  # rank 0's final checkpoint holds those weights
    assert any((first[k] != last[k]).any() for k in first)  # and training did move them
