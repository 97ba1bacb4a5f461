"""The recommender (seed 004): developers x startups, or any users x items.

- ``synthetic``: a deterministic generator with a planted affinity between profiles;
- ``data``: interaction labels and weights, splits, the pointwise training set;
- ``features``: a JSON-serialisable encoder (categoricals, lists, numbers, TF-IDF + SVD text);
- ``model``: the two-tower network and its losses;
- ``metrics``: ranking metrics at k with the field's definitions;
- ``baselines``: popularity, item-kNN, content-based, BPR matrix factorisation;
- ``training``: training through ``core.trainer.Trainer`` and the full evaluation;
- ``serving``: item index, top-k, and cold/warm/hot routing.
"""
