"""Loopback fakes of Google Cloud services for the tests (Secret Manager, error servers, GCS emulator)."""
