"""DreamLite, open and complete: one network for text-to-image generation and image editing."""

__version__ = "0.1.0"


def __getattr__(name):
    # Lazy, so `import dreamlite` (and the CLI's --help) stays fast.
    if name == "DreamLitePipeline":
        from .pipeline import DreamLitePipeline

        return DreamLitePipeline
    raise AttributeError(f"module 'dreamlite' has no attribute {name!r}")
