"""benchmarks/latent_shapes.py: shape pairs are compared at equal place, size and colour; bad input is one line."""

import json


def test_every_shape_pair_is_measured_and_larger_objects_lie_farther_apart(tmp_path, run_benchmark):
    out = tmp_path / "out.json"
    done = run_benchmark("latent_shapes", "shapes-base", "--json", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())["models"]["shapes-base"]
    for size in ("smallest", "largest"):
        pairs = {tuple(sorted(r["pair"])) for r in report[size]["pairs"]}
        assert len(pairs) == 10 and all(a != b for a, b in pairs)
        distances = [r["distance"] for r in report[size]["pairs"]]
        assert distances == sorted(distances) and distances[0] > 0 and report[size]["closest"]["distance"] == distances[0]
    # a bigger object changes more latent cells when its shape changes
    assert report["largest"]["median distance"] > report["smallest"]["median distance"]
    for args in (["--background", "mauve"], ["no-such-model"]):
        done = run_benchmark("latent_shapes", *args)
        last = done.stderr.strip().splitlines()[-1]
        assert done.returncode != 0 and last.startswith("error:") and "Traceback" not in done.stderr


def test_pairs_differ_in_shape_only(benchmark, monkeypatch):
    """Two renders of a pair share colour, place and size: an encoder that keeps only which colours appear (blind
    to shape) sees no difference in any pair, while the image itself differs in every pair."""
    import torch

    module = benchmark("latent_shapes")
    monkeypatch.setattr(module, "encode_latents", lambda vae, images: torch.cat(
        [images.amax(dim=(2, 3)), images.amin(dim=(2, 3))], dim=1))
    assert all(d < 1e-6 for d in module.shape_distances(None, 64, "white", 12.0).values())
    monkeypatch.setattr(module, "encode_latents", lambda vae, images: images)
    distances = module.shape_distances(None, 64, "white", 12.0)
    assert len(distances) == 10 and all(d > 1 for d in distances.values())
