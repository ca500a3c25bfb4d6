"""On-device deployment: quantisation, ONNX / ExecuTorch / Core ML export, device-style runners, speed.

Nothing here changes the model: export-friendly attention is a diffusers attention processor set with
`unet.set_attn_processor`, and the exported graphs wrap the unchanged U-Net and VAE.
"""
