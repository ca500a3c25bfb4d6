"""`dreamlite data shapes`: write the Shapes world as WebDataset shards, the format the trainer streams at scale."""

from __future__ import annotations

import argparse
import json

from ..errors import DreamLiteError


def cmd_shapes(args):
    from .shapes import TASKS, shapes_sample
    from .webdataset_io import write_shards

    if args.num < 1:
        raise DreamLiteError(f"--num must be at least 1, got {args.num}")
    if args.size < 16 or args.size % 16:
        raise DreamLiteError(f"--size must be a positive multiple of 16, got {args.size}")
    if args.task not in TASKS:
        raise DreamLiteError(f"--task must be one of {TASKS}")
    if args.per_shard < 1:
        raise DreamLiteError(f"--per-shard must be at least 1, got {args.per_shard}")
    if not 0 <= args.edit_fraction <= 1:
        raise DreamLiteError(f"--edit-fraction must be in [0, 1], got {args.edit_fraction}")
    samples = (shapes_sample(args.seed, i, args.task, args.size, args.edit_fraction) for i in range(args.num))
    shards = write_shards(samples, args.out, total=args.num, per_shard=args.per_shard)
    print(json.dumps({"out": args.out, "samples": args.num, "shards": len(shards)}))


def register(sub: argparse._SubParsersAction):
    data = sub.add_parser("data", help="write training data", description="Write training data to disk.")
    dsub = data.add_subparsers(dest="data_command", required=True)
    p = dsub.add_parser("shapes", help="Shapes world samples as WebDataset tar shards")
    p.add_argument("--out", required=True, help="folder for shard-000000.tar, ...")
    p.add_argument("--num", type=int, required=True, help="number of samples")
    p.add_argument("--size", type=int, default=128, help="image side in pixels")
    p.add_argument("--task", default="t2i", help="t2i | edit | joint")
    p.add_argument("--edit-fraction", type=float, default=0.5, help="share of edits in the joint mix")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--per-shard", type=int, default=1000, help="samples per tar shard")
    p.set_defaults(func=cmd_shapes)
