"""learnflow: MIT Learn's data flows on Temporal, Postgres, OpenSearch/tantivy, Qdrant and gRPC."""

import os
from pathlib import Path

# Entry points that import the kernel before grpc (see worker.py for why).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

REPO_ROOT = Path(__file__).resolve().parent.parent
