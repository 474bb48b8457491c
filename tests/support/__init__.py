"""Helpers the tests share: audio, stores, services, fake hubs."""
