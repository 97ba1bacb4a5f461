"""The market domain: prices and context in, features and labels, the trend and relevance
models, their losses, evaluation and prediction. ``core/`` holds the machinery it shares
with the recommender (``core/recsys/``): configs, the trainer, checkpoints, files."""
