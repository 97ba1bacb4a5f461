"""Sweeps: a study of trials (``study``), the driver that starts, reports and prunes them
(``driver``) and the space they search (``space``)."""
