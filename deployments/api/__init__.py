"""The thin verifier API: FastAPI routes over ``core`` service calls (``create_app`` in :mod:`.app`)."""
