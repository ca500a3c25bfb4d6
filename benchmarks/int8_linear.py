"""One Linear layer of the paper U-Net's middle level in fp32, bf16, torchao W8A8 (static and dynamic) and
raw `torch._int_mm`: where int8 speed is lost on this CPU before a whole-U-Net path is built.

    python benchmarks/int8_linear.py [--tokens 8192] [--in 512] [--out 1536]

8192 tokens x 512 channels is the 64x128 level at 1024 px; 1536 = 3x its width (the feed-forward, ff_mult 3).
"""

import argparse
import copy

import torch
from torchao.quantization import (
    Int8DynamicActivationInt8WeightConfig,
    Int8StaticActivationInt8WeightConfig,
    PerRow,
    PerTensor,
    quantize_,
)

from dreamlite.deploy.bench_models import median_time


def median_ms(fn, runs=7):
    return median_time(fn, runs)[0] * 1e3


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--in", dest="fan_in", type=int, default=512)
    parser.add_argument("--out", dest="fan_out", type=int, default=1536)
    a = parser.parse_args()
    torch.manual_seed(0)
    x, linear = torch.randn(a.tokens, a.fan_in), torch.nn.Linear(a.fan_in, a.fan_out)
    with torch.no_grad():
        reference = linear(x)
        rows = {"fp32": median_ms(lambda: linear(x))}
        half, xb = copy.deepcopy(linear).bfloat16(), x.bfloat16()
        rows["bf16"] = median_ms(lambda: half(xb))
        static = copy.deepcopy(linear)
        scale = (x.abs().max() / 127).reshape(1, 1)
        quantize_(static, Int8StaticActivationInt8WeightConfig(act_quant_scale=scale, granularity=[PerTensor(), PerRow()]))
        rows["torchao w8a8 static"] = median_ms(lambda: static(x))
        dynamic = copy.deepcopy(linear)
        quantize_(dynamic, Int8DynamicActivationInt8WeightConfig())
        rows["torchao w8a8 dynamic"] = median_ms(lambda: dynamic(x))
        xi = torch.randint(-127, 127, (a.tokens, a.fan_in), dtype=torch.int8)
        wi = torch.randint(-127, 127, (a.fan_in, a.fan_out), dtype=torch.int8)
        rows["raw torch._int_mm (no scaling)"] = median_ms(lambda: torch._int_mm(xi, wi))
        error = float((static(x) - reference).abs().mean() / reference.abs().mean())
    print(f"Linear {a.tokens}x{a.fan_in} -> {a.fan_out}, median of 7 (ms); torchao static relative error {error:.4f}")
    for name, ms in rows.items():
        print(f"  {name:<32} {ms:8.1f}  ({rows['fp32'] / ms:.2f}x fp32)")


if __name__ == "__main__":
    main()
