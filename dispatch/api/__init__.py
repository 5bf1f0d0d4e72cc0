"""The ERP HTTP API (FastAPI): app factory, auth, one router per resource. No business rules."""
