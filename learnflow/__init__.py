"""learnflow: MIT Learn's data flows on Temporal, Postgres, OpenSearch/tantivy, Qdrant and gRPC."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
