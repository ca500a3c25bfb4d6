"""The fastest CPU path: PyTorch's own x86 compiler, as a drop-in U-Net for the pipeline.

`compile_step` turns a `UNetStep` into a compiled callable: torch.compile with weight freezing on bf16, or,
with `quantize`, PyTorch's x86 int8 recipe first: PT2E static W8A8 (`X86InductorQuantizer`: per-channel
weights, per-tensor activation ranges from calibration inputs) lowered by Inductor to oneDNN int8 kernels,
with the ops left in float run in bf16 under autocast ("int8-mixed-bf16"). `dreamlite speed` times it on
the paper U-Net; `InductorUNet` puts a graph compiled by the same recipe inside `DreamLitePipeline`, so
`dreamlite evaluate --runtime inductor-int8` scores the recipe that was timed (on the model being scored,
calibrated on Shapes samples).

The graph has static shapes, like the exports: `InductorUNet` pads the text to `text_len` tokens and runs
the batch in fixed chunks (the last one filled up), so one compilation serves every call.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..errors import DreamLiteError
from . import INDUCTOR_RUNTIMES
from .calibration import pad_text


def compile_step(step: nn.Module, example: Sequence[torch.Tensor], quantize: bool,
                 calibration: Sequence[Sequence[torch.Tensor]] = ()) -> Callable[..., torch.Tensor]:
    """A compiled `step` for inputs shaped like `example`; int8 ranges come from `calibration` (else `example`)."""
    import torch._inductor.config as inductor_config

    # Freezing makes weights constants: pre-packed oneDNN weights, folded quant params. It is a process-wide
    # setting (`torch.compile(options={"freezing": True})` fails to lower the int8 prepack ops in torch 2.13),
    # so later compilations in this process freeze too.
    inductor_config.freezing = True
    if not quantize:
        step = step.to(torch.bfloat16)
        with torch.no_grad():
            compiled = torch.compile(step, dynamic=False)

        def run_bf16(*inputs):
            with torch.no_grad():
                return compiled(*[x.to(torch.bfloat16) for x in inputs]).float()

        return run_bf16
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = xiq.X86InductorQuantizer().set_global(xiq.get_default_x86_inductor_quantization_config())
    with torch.no_grad():
        graph = torch.export.export(step, tuple(example)).module()
        prepared = prepare_pt2e(graph, quantizer)
        for inputs in calibration or [example]:
            prepared(*inputs)
        converted = convert_pt2e(prepared)
        # export records every float32 cast as a dtype assertion; under bf16 autocast they would fail
        for node in [n for n in converted.graph.nodes if n.target == torch.ops.aten._assert_tensor_metadata.default]:
            converted.graph.erase_node(node)
        converted.recompile()
        compiled = torch.compile(converted, dynamic=False)

    def run_int8(*inputs):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            return compiled(*inputs).float()

    return run_int8


class InductorUNet(nn.Module):
    """Called like `DreamLiteUNetModel` inside the pipeline; runs a compiled static-shape `UNetStep`.

    It returns the target (left) half only, which the pipeline's crop leaves unchanged."""

    def __init__(self, unet, run: Callable[..., torch.Tensor], batch: int, text_len: int):
        super().__init__()
        self.config, self._run, self.batch, self.text_len = unet.config, run, batch, text_len
        self.register_buffer("_anchor", torch.zeros((), dtype=torch.float32), persistent=False)  # dtype / device

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def device(self) -> torch.device:
        return self._anchor.device

    def forward(self, sample, timestep, encoder_hidden_states, encoder_attention_mask=None, added_cond_kwargs=None,
                return_dict=False, **_):
        n = sample.shape[0]
        mask = (torch.ones(encoder_hidden_states.shape[:2]) if encoder_attention_mask is None
                else encoder_attention_mask.float())
        embeds, mask = pad_text(encoder_hidden_states, mask, self.text_len)
        # a fresh [n] tensor: an expanded one has stride 0, which the compiled graph's guards treat as a new input
        timestep = torch.as_tensor(timestep, dtype=torch.float32).reshape(-1) * torch.ones(n)
        inputs = [sample.float(), timestep, embeds, mask, added_cond_kwargs["time_ids"].float()]
        out = []
        for start in range(0, n, self.batch):
            chunk = [x[start:start + self.batch].contiguous() for x in inputs]  # same strides: no recompilation
            size = chunk[0].shape[0]
            if size < self.batch:  # fill the compiled batch with copies of the first row; their outputs are dropped
                chunk = [torch.cat([x, x[:1].expand(self.batch - size, *x.shape[1:])]).contiguous() for x in chunk]
            out.append(self._run(*chunk)[:size])
        out = torch.cat(out)
        return (out,) if not return_dict else {"sample": out}


def inductor_pipeline(pipe, runtime: str, text_len: int, batch: int = 16, calibration_samples: int = 32):
    """`pipe` with its U-Net replaced by the compiled graph of `runtime` (calibrated on Shapes inputs for int8)."""
    if runtime not in INDUCTOR_RUNTIMES:
        raise DreamLiteError(f"unknown runtime {runtime!r}; choose one of: {', '.join(INDUCTOR_RUNTIMES)}")
    from .calibration import calibration_batches
    from .graph import UNetStep, example_inputs, use_explicit_attention

    unet = copy.deepcopy(pipe.unet).float().eval()
    use_explicit_attention(unet)  # as timed by `dreamlite speed`
    size = pipe.default_resolution
    quantize = runtime.endswith("int8")
    if quantize:  # int8 ranges from real inputs
        samples = [b["unet"] for b in calibration_batches(pipe, calibration_samples, size, size, text_len)]
        # whole batches of the compiled size: drop the remainder, or repeat samples when there are fewer than a batch
        samples = list(itertools.islice(itertools.cycle(samples), max(batch, len(samples) - len(samples) % batch)))
        batches = [[torch.cat(x) for x in zip(*samples[i:i + batch])] for i in range(0, len(samples), batch)]
    else:  # bf16 needs only the shapes
        batches = [example_inputs(unet, pipe.vae, size, size, text_len, batch=batch)["unet"]]
    run = compile_step(UNetStep(unet).eval(), batches[0], quantize=quantize, calibration=batches)
    run(*batches[0])  # compile now, not inside the first sampling step
    components = {**pipe.components, "unet": InductorUNet(pipe.unet, run, batch, text_len)}
    return type(pipe)(**components, mode=pipe.config.mode, text_encoder_name=pipe.config.text_encoder_name,
                      **pipe.sampling_defaults)
