"""ODL Video Service: demo payloads for `learn up --demo` and the tests (see sources/_demo.py)."""

from __future__ import annotations

from datetime import timedelta

from sources._demo import (
    FUTURE,
    DemoServer,
    drf_pages,
    iso,
    subject,
)

OVS_CDN = "https://d1rlgptj9v7p9j.cloudfront.net"
OVS_HLS = "https://du3yhovcx8dht.cloudfront.net"


def ovs_video(i: int, collection: int) -> dict:
    key = f"{i:032x}"
    _number, title, topic, _dept = subject(i)
    return {
        "key": key,
        "created_at": iso(FUTURE - timedelta(days=i)),
        "title": f"Lecture {i + 1}: {title}",
        "description": f"A recorded lecture on {topic.lower()}.",
        "status": "Complete",
        "is_public": True,
        "youtube_id": None,
        "sources": [
            {
                "src": f"{OVS_HLS}/transcoded/{key}/video__index.m3u8",
                "label": "HLS",
                "type": "application/x-mpegURL",
            }
        ],
        "cta_link": None,
        "duration": 1800.0 + 60 * i,
        "multiangle": False,
        "videothumbnail_set": [
            {
                "id": i,
                "s3_object_key": f"thumbnails/{key}/video_thumbnail_00001.jpg",
                "cloudfront_url": f"{OVS_CDN}/thumbnails/{key}/video_thumbnail_00001.jpg",
            }
        ],
        "videosubtitle_set": [
            {
                "id": i,
                "filename": "subtitles_en.vtt",
                "s3_object_key": f"subtitles/{key}/subtitles_en.vtt",
                "language": "en",
                "language_name": "English",
            }
        ],
        "collection": {
            "key": f"{collection:032x}"[::-1],
            "title": f"Demo lecture series {collection + 1}",
            "description": "",
            "is_public": True,
            "stream_source": None,
        },
    }


def install_ovs(server: DemoServer, n_videos: int = 12) -> dict[str, str]:
    videos = [ovs_video(i, i % 3) for i in range(n_videos)]
    path = "/api/v0/public/videos/"
    server.route(path, drf_pages(path, videos, 5, lambda: server.base_url))
    return {"OVS_API_BASE_URL": server.base_url}


install = install_ovs
