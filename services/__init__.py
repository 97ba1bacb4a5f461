"""The application layer: what pages, the CLI and the HTTP API ask for, built on core/ (the
models and data) and storage/ (persistence), grouped by concern:

- ``services.jobs``: background jobs (manager, worker, Ray, kinds, run owners, progress);
- ``services.market``: market runs, their evaluation, forecasts, rolling retrains, tries,
  dataset updates and what the pages show of them;
- ``services.recsys``: the serving recommender and its runs;
- ``services.sweeps``: a sweep's study, driver and space;
- at the top, what every concern shares: the registry of models, the read views
  (``catalog``, ``facts``, ``runs_table``, ``reports``), datasets, estimates, access, the
  database and the demo.
"""
