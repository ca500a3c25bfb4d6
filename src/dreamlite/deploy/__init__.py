"""On-device deployment: quantisation, ONNX / ExecuTorch / Core ML export, device-style runners, speed.

Nothing here changes the model: export-friendly attention is a diffusers attention processor set with
`unet.set_attn_processor`, and the exported graphs wrap the unchanged U-Net and VAE.
"""

# Every way `dreamlite evaluate --runtime` can run a model (kept here, free of torch, for the CLI's start-up).
INDUCTOR_RUNTIMES = ("inductor-bf16", "inductor-int8")
EXPORTED_RUNTIMES = ("onnx", "onnx-int8", "executorch", "executorch-int8")
RUNTIMES = ("pytorch", "w8a8", *INDUCTOR_RUNTIMES, *EXPORTED_RUNTIMES)
