"""Training: configs, objectives, the accelerate-based trainer and the stage recipes."""
