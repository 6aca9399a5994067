"""Course archives: safe extraction, change detection and the OLX / Canvas / OCW content walkers.

Everything here is pure (files in, models out): no S3, no Temporal. Activities wrap it.
"""

from sources.archives.safe_extract import (
    ExtractedArchive,
    ExtractionLimits,
    UnsafeArchiveError,
    extract_archive,
    safe_extract,
)

__all__ = [
    "ExtractedArchive",
    "ExtractionLimits",
    "UnsafeArchiveError",
    "extract_archive",
    "safe_extract",
]
