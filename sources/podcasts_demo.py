"""Podcasts (YAML configs + RSS): demo payloads for `learn up --demo` and the tests (see sources/_demo.py)."""

from __future__ import annotations

from datetime import timedelta

from sources._demo import (
    FUTURE,
    DemoServer,
    Response,
    subject,
)


def podcast_rss(p: int, base_url: str, n_episodes: int = 4) -> bytes:
    items = "".join(
        f"""<item><title>Episode {e + 1}: {subject(p + e)[1]}</title>
<guid isPermaLink="false">demo-podcast-{p}-episode-{e}</guid>
<link>https://podcasts.example.edu/{p}/{e}</link>
<description>&lt;p&gt;We talk about {subject(p + e)[2].lower()}.&lt;/p&gt;</description>
<pubDate>{(FUTURE - timedelta(days=7 * e)).strftime("%a, %d %b %Y %H:%M:%S +0000")}</pubDate>
<enclosure url="https://audio.example.edu/{p}/{e}.mp3" length="1000" type="audio/mpeg"/>
<itunes:duration>00:{20 + e}:00</itunes:duration>
</item>"""
        for e in range(n_episodes)
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">
<channel><title>Demo Podcast {p + 1}</title><link>https://podcasts.example.edu/{p}</link>
<description>Conversations from MIT.</description>
<itunes:image href="https://podcasts.example.edu/{p}/cover.jpg"/>{items}</channel></rss>""".encode()


def install_podcasts(server: DemoServer, n_podcasts: int = 2) -> dict[str, str]:
    import yaml

    configs = []
    for p in range(n_podcasts):
        rss = f"/podcasts/feeds/{p}.rss"
        server.route(
            rss,
            Response(200, podcast_rss(p, server.base_url), {"Content-Type": "application/rss+xml"}),
        )
        configs.append(
            {
                "rss_url": f"{server.base_url}{rss}",
                "podcast_title": f"Demo Podcast {p + 1}",
                "topics": "Science, Engineering",
                "offered_by": "OCW",
                "website": f"https://podcasts.example.edu/{p}",
            }
        )
    server.route("/podcasts/config.yaml", Response(200, yaml.safe_dump(configs).encode()))
    return {"PODCAST_CONFIG_URL": f"{server.base_url}/podcasts/config.yaml"}


install = install_podcasts
