"""The service layer: plain functions that take a session (and ``now``) and raise domain errors."""
