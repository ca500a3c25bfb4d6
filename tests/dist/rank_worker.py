"""Run under torchrun: one rank of a 2-rank job. `data OUT`: the stream indices this rank reads;
`train OUT`: a few micro training steps, then this rank's final weights."""

import json
import os
import sys

import torch


def data(out):
    from dreamlite.data.shapes import ShapesStream
    from dreamlite.data.transforms import collate

    loader = torch.utils.data.DataLoader(ShapesStream("joint", size=32, seed=5), batch_size=4, num_workers=2,
                                         collate_fn=lambda s: [x["index"] for x in s])
    seen = [i for batch, _ in zip(loader, range(6)) for i in batch]
    keys = [x["key"] for x, _ in zip(ShapesStream("t2i", size=32, seed=5), range(3))]
    assert collate  # the training collate is what real runs use; indices are enough here
    with open(os.path.join(out, f"data-{os.environ['RANK']}.json"), "w") as f:
        json.dump({"indices": seen, "keys": keys}, f)


def train(out):
    from safetensors.torch import save_file

    from dreamlite.training.config import load_config
    from dreamlite.training.trainer import Trainer

    unet = ("unet_overrides={block_out_channels: [32, 64, 64], attention_head_dim: [1, 2, 2], "
            "transformer_layers_per_block: [1, 1, 1], cross_attention_dim: 64}")
    cfg = load_config(None, ["stage=joint", "data.task=joint", "data.size=32", "optim.steps=3", "optim.batch_size=2",
                             "optim.warmup_steps=1", "log.checkpoint_every=1", "log.keep=3", unet])
    trainer = Trainer(cfg, os.path.join(out, "run"), progress=False)
    trainer.train()
    model = trainer.accelerator.unwrap_model(trainer.model)
    info = {"world": trainer.accelerator.num_processes, "rank": trainer.accelerator.process_index}
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              os.path.join(out, f"weights-{os.environ['RANK']}.safetensors"), metadata={k: str(v) for k, v in info.items()})


if __name__ == "__main__":
    {"data": data, "train": train}[sys.argv[1]](sys.argv[2])
