"""Batch ingest jobs: discover files, read their metadata, embed, upsert, export a snapshot.

The job (:class:`ingest.pipeline.IngestJob`) is built by the composition root
(``timbre ingest``, or the API's ingest endpoint through the CLI's wiring) with the models and
store it needs, and is safe to re-run or kill at any moment.
"""
