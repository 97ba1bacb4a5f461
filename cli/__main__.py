"""`python -m cli`: the same as the `trendlab` console script."""

from cli import main

main()
