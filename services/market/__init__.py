"""The market side: runs (``runs``) and their evaluation (``evaluation``), forecasts
(``forecasts``), rolling retrains (``rolling``), many tries judged as one (``tries``), dataset
updates (``updates``), the metrics table as shown (``tables``) and the Predict page's
scales and batch columns (``what_ifs``, ``batch_inputs``)."""
