"""Batch ingest jobs: discover files, read their metadata, embed, upsert, export a snapshot
(:class:`ingest.pipeline.IngestJob`, wired by :mod:`ingest.job`)."""
