"""Keel's content store: content addressed by digest, outside Temporal's history.

- :mod:`keel.runtime.store.blobs` — where the bytes live: a directory (the embedded default,
  ``<KEEL_HOME>/store``) or an S3 bucket (``KEEL_STORE=s3://bucket/prefix``);
- :mod:`keel.runtime.store.content` — content by digest, encrypted with the codec keyring;
- :mod:`keel.runtime.store.payloads` — the SDK's ``ExternalStorage`` over the same place, for
  any payload over the threshold (a 5 MB task, a large result);
- :mod:`keel.runtime.store.transcripts` — a run's conversation as a chain of stored nodes.

docs/architecture.md ("History budget") says what is in history and what is in the store.
"""
