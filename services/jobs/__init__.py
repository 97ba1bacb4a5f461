"""Background jobs: the manager that queues, launches and follows them (``manager``), the
worker process that runs one and never opens the database (``worker``), Ray as another
place to run it (``ray_runner``), the kinds of job (``kinds``), who owns a run
(``run_owners``) and a job's progress in words (``progress``)."""
