"""DreamLite, open and complete: one network for text-to-image generation and image editing."""

__version__ = "0.1.0"
