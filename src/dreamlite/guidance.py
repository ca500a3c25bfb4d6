"""Which U-Net branches a sampling step needs and how their velocities combine (classifier-free guidance).

Torch-free, so the PyTorch pipeline and the exported-graph runners share one definition.
"""

from __future__ import annotations

DEFAULT_GUIDANCE = 3.5
DEFAULT_IMAGE_GUIDANCE = 1.5


def guidance_branches(mode: str, task: str, guidance: float = DEFAULT_GUIDANCE,
                      image_guidance: float = DEFAULT_IMAGE_GUIDANCE) -> tuple[str, ...]:
    """The U-Net branches one sampling step needs, in batch order: a subset of ("uncond", "image", "text").

    Mobile mode and a scale of 1 need no unconditional branch: at 1, CFG's extrapolation is the conditional
    prediction itself, so evaluating the other branch only doubles the cost."""
    if mode == "mobile":
        return ("text",)
    if task == "generate":
        return ("text",) if guidance == 1 else ("uncond", "text")
    if image_guidance == 1:
        return ("text",) if guidance == 1 else ("image", "text")
    return ("uncond", "image", "text")


def combine_guidance(v: dict, guidance: float, image_guidance: float):
    """CFG over the branches present: uncond -> image by the image scale, image (or uncond) -> text by the text
    scale (InstructPix2Pix's dual guidance; a missing branch is one whose scale is 1)."""
    if "image" in v:
        base = v["image"] if "uncond" not in v else v["uncond"] + image_guidance * (v["image"] - v["uncond"])
        return base + guidance * (v["text"] - v["image"])
    if "uncond" in v:
        return v["uncond"] + guidance * (v["text"] - v["uncond"])
    return v["text"]
