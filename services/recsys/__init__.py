"""The recommender side: the recommender that serves (``serving``) and its training runs
(``runs``)."""
