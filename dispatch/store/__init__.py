"""Persistence: engine and sessions, repositories (keyword-only functions), job claiming."""
