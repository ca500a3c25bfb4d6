"""DreamLite, open and complete: one network for text-to-image generation and image editing."""

import logging

__version__ = "0.1.0"

# diffusers imports torchao (an optional quantisation backend) when it is installed; on CPU-only torch builds
# torchao warns at import about its CUDA kernels, and torch about enum registrations: noise for every user.
for _name in ("torchao", "torch.utils._pytree", "diffusers.quantizers.torchao.torchao_quantizer"):
    logging.getLogger(_name).setLevel(logging.ERROR)


def __getattr__(name):
    # Lazy, so `import dreamlite` (and the CLI's --help) stays fast.
    if name == "DreamLitePipeline":
        from .pipeline import DreamLitePipeline

        return DreamLitePipeline
    raise AttributeError(f"module 'dreamlite' has no attribute {name!r}")
