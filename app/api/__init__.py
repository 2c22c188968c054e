"""The HTTP API (FastAPI): thin routes over the services, problem-details errors, auth and limits."""
