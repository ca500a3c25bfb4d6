"""Qwen3-VL's processor without the video processor, so it works where torchvision is absent.

DreamLite only shows the VLM still images; transformers' `Qwen3VLProcessor` insists on a video processor,
which needs torchvision. This subclass accepts none and saves/loads just the tokenizer and image processor.
"""

from __future__ import annotations

from transformers import AutoTokenizer, ProcessorMixin, Qwen2VLImageProcessorPil, Qwen3VLProcessor

# diffusers resolves a custom component's loadable base class by name in the component's module.
__all__ = ["Qwen3VLImageOnlyProcessor", "ProcessorMixin"]


class Qwen3VLImageOnlyProcessor(Qwen3VLProcessor):
    def check_argument_for_proper_class(self, argument_name, argument):
        if argument is None:  # the missing video processor
            return None
        return super().check_argument_for_proper_class(argument_name, argument)

    def save_pretrained(self, save_directory, **kwargs):
        self.tokenizer.save_pretrained(save_directory)
        self.image_processor.save_pretrained(save_directory)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        tokenizer = AutoTokenizer.from_pretrained(pretrained_model_name_or_path)
        image_processor = Qwen2VLImageProcessorPil.from_pretrained(pretrained_model_name_or_path)
        return cls(image_processor=image_processor, tokenizer=tokenizer)
