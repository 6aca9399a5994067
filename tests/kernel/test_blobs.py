"""Both blob stores delete a run's folder and nothing beside it (run ids that extend another's
are other runs)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from learnflow.stores.blobs import DirectoryBlobStore, S3BlobStore

pytestmark = pytest.mark.s3


@pytest.fixture(params=["directory", "s3"])
def blobs(request, tmp_path):
    if request.param == "directory":
        return DirectoryBlobStore(tmp_path)
    s3 = request.getfixturevalue("s3_server")
    s3.client().create_bucket(Bucket="blobs-test")
    return S3BlobStore("s3://blobs-test/learnflow", s3.endpoint_url, "testing", "testing",
                       "us-east-1")  # fmt: skip


async def test_delete_prefix_takes_the_folder_only(blobs):
    keys = ["raw/ocw/run-1/00000-json", "raw/ocw/run-1/manifest.json", "raw/ocw/run-10/00000-json",
            "raw/ocw/run-1b/00000-json"]  # fmt: skip
    for key in keys:
        await blobs.put(key, key.encode())
    await blobs.delete_prefix("raw/ocw/run-1")
    for key in keys[:2]:
        with pytest.raises((FileNotFoundError, ClientError)):  # ClientError: S3's NoSuchKey
            await blobs.get(key)
    for key in keys[2:]:
        assert await blobs.get(key) == key.encode()
