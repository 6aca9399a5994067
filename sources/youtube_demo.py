"""YouTube Data API v3: demo payloads for `learn up --demo` and the tests (see sources/_demo.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sources._demo import (
    FUTURE,
    DemoServer,
    Request,
    Response,
    iso,
    subject,
)


def _thumbs(vid: str) -> dict:
    return {
        "high": {"url": f"https://i.ytimg.com/vi/{vid}/hqdefault.jpg", "width": 480, "height": 360}
    }


def install_youtube(
    server: DemoServer, n_playlists: int = 2, per_playlist: int = 4
) -> dict[str, str]:
    import yaml

    channel = "UCdemoChannel000000000001"
    playlists = {
        f"PLdemo{p:04d}": [f"vid{p:02d}{v:05d}" for v in range(per_playlist)]
        for p in range(n_playlists)
    }

    def video(vid: str, n: int) -> dict:
        _number, title, topic, _dept = subject(n)
        return {
            "kind": "youtube#video",
            "id": vid,
            "snippet": {
                "publishedAt": iso(FUTURE - timedelta(days=n)),
                "channelId": channel,
                "title": f"{title} in five minutes",
                "description": f"A short video on {topic.lower()}.",
                "thumbnails": _thumbs(vid),
                "channelTitle": "MITx Videos",
                "localized": {"title": f"{title} in five minutes", "description": ""},
            },
            "contentDetails": {"duration": f"PT{4 + n % 5}M{n % 60}S"},
        }

    all_videos = {
        vid: video(vid, n) for n, vid in enumerate(v for vs in playlists.values() for v in vs)
    }

    def api(name: str) -> Callable[[Request], Response]:
        def handler(req: Request) -> Response:
            if req.q("key") != "demo-youtube-key":
                return Response.json({"error": {"code": 400, "message": "API key not valid"}}, 400)
            if name == "playlists":
                items = [
                    {
                        "kind": "youtube#playlist",
                        "id": pid,
                        "snippet": {
                            "publishedAt": iso(FUTURE),
                            "channelId": channel,
                            "title": f"Demo playlist {n + 1}",
                            "description": "",
                            "thumbnails": _thumbs(vids[0]),
                            "channelTitle": "MITx Videos",
                            "localized": {"title": f"Demo playlist {n + 1}", "description": ""},
                        },
                    }
                    for n, (pid, vids) in enumerate(playlists.items())
                ]
                return Response.json({"kind": "youtube#playlistListResponse", "items": items})
            if name == "playlistItems":
                pid = req.q("playlistId") or ""
                items = [
                    {
                        "kind": "youtube#playlistItem",
                        "id": f"{pid}.{v}",
                        "snippet": {"playlistId": pid},
                        "contentDetails": {"videoId": v},
                    }
                    for v in playlists.get(pid, [])
                ]
                return Response.json({"kind": "youtube#playlistItemListResponse", "items": items})
            ids = (req.q("id") or "").split(",")
            items = [all_videos[v] for v in ids if v in all_videos]
            return Response.json({"kind": "youtube#videoListResponse", "items": items})

        return handler

    def captions(req: Request) -> Response:
        # The demo never calls youtube.com: each video's English captions (WebVTT) are built
        # here; the generated track only (`kind=asr`), as most channels have.
        vid = req.q("v") or ""
        if vid not in all_videos or req.q("kind") != "asr":
            return Response(200, b"", {"Content-Type": "text/vtt"})
        _n, title, topic, _d = subject(list(all_videos).index(vid))
        cues = (f"Welcome to {title}.", f"Today we look at {topic.lower()} through an example.")
        body = "WEBVTT\n\n" + "".join(
            f"00:00:{2 * i:02d}.000 --> 00:00:{2 * i + 2:02d}.000\n{cue}\n\n"
            for i, cue in enumerate(cues)
        )
        return Response(200, body.encode(), {"Content-Type": "text/vtt"})

    for name in ("playlists", "playlistItems", "videos"):
        server.route(f"/youtube/v3/{name}", api(name))
    server.route("/youtube/api/timedtext", captions)
    config = [
        {
            "channel_id": channel,
            "offered_by": "mitx",
            "create_videos": True,
            "playlists": [{"id": "all"}],
        }
    ]
    server.route("/youtube/channels.yaml", Response(200, yaml.safe_dump(config).encode()))
    return {
        "YOUTUBE_DEVELOPER_KEY": "demo-youtube-key",
        "YOUTUBE_CONFIG_URL": f"{server.base_url}/youtube/channels.yaml",
        "YOUTUBE_API_BASE_URL": f"{server.base_url}/youtube/v3",
        "YOUTUBE_CAPTIONS_BASE_URL": f"{server.base_url}/youtube",
    }


install = install_youtube
