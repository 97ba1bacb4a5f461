"""The HTTP API, served under /api on the dashboard's own port (api.server mounts it).

Like a page, each handler gathers input, calls core/ and services/, and answers; it shares the
server's database engine. FastAPI validates parameters (422 names them, briefly, without
echoing the input) and publishes the OpenAPI document at /api/openapi.json, behind the same
token as every route, with a reference page of it at /api/docs rendered on the server.
Bodies over TRENDLAB_API_MAX_BODY_MB get 413; a client that keeps guessing the token gets 429.

- ``api.app``: ``create_api``, which builds the app from the rest;
- ``api.dependencies``: the token check, the Unicode check, the 422 answer, the body cap;
- ``api.schemas``: request and response bodies; ``api.shared``: what handlers share;
- one module of routes per resource: ``health``, ``recommendations``, ``info``,
  ``datasets``, ``runs``, ``sweeps``, ``predict``;
- ``api.sign_ins``: who gave the dashboard's password, and the gate holding Streamlit's own
  routes to it (the pages record sign-ins, the server installs the gate);
- ``api.server``: the ASGI app `trendlab serve` starts (pages + /api).

Importing this package loads none of them.
"""
