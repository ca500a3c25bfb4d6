"""benchmarks/sampling_path.py: the clean image it predicts from two consecutive latents is the sampler's own."""

import numpy as np


def test_the_last_predicted_clean_image_is_the_output(benchmark, minilm_pipe):
    """The last Euler step lands on sigma 0, so the clean latent recovered at the step before it is the output."""
    sampling_path = benchmark("sampling_path")
    row, sigmas = sampling_path.path_row(minilm_pipe, "a photo of a red circle", 3, 1, num_inference_steps=4,
                                         guidance_scale=1.0)
    size = minilm_pipe.default_resolution + 4  # each tile has a 2-px frame
    tiles = [row[:, i * size:(i + 1) * size] for i in range(row.shape[1] // size)]
    assert len(tiles) == 5 and len(sigmas) == 5 and sigmas[0] == 1.0 and sigmas[-1] == 0.0
    assert np.abs(tiles[3].astype(int) - tiles[4].astype(int)).max() <= 1  # prediction at step 3 == output
    assert np.abs(tiles[0].astype(int) - tiles[4].astype(int)).max() > 1  # beyond that tolerance, the first differs
