"""The application layer: what pages, the CLI and the HTTP API ask for, built on core/ (the
models and data) and storage/ (persistence)."""
