"""Training data: one sample format from every source (the Shapes world, WebDataset shards, image folders).

A sample is a dict: `image` (target, float tensor [3, H, W] in [-1, 1]), `source` (same shape, edit source;
absent for text-to-image), `text` (caption or instruction), `task` ("generate" or "edit"), `key` (unique id).
"""

from .shapes import ShapesStream
from .sharding import shard_info

__all__ = ["ShapesStream", "shard_info"]
