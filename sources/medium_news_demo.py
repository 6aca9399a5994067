"""Medium (RSS): demo payloads for `learn up --demo` and the tests (see sources/_demo.py)."""

from __future__ import annotations

from datetime import timedelta

from sources._demo import (
    FUTURE,
    DemoServer,
    Response,
)


def medium_rss(n: int = 5) -> bytes:
    items = "".join(
        f"""<item><title><![CDATA[Open Learning story {i + 1}]]></title>
<link>https://medium.com/open-learning/story-{i + 1}</link>
<guid isPermaLink="false">https://medium.com/p/demo{i}</guid>
<category><![CDATA[education]]></category><dc:creator><![CDATA[Jane Doe]]></dc:creator>
<pubDate>{(FUTURE - timedelta(days=i)).strftime("%a, %d %b %Y %H:%M:%S GMT")}</pubDate>
<content:encoded><![CDATA[<figure><img src="https://cdn-images-1.medium.com/demo{i}.png"></figure><p>How people learn, part {i + 1}.</p>]]></content:encoded>
</item>"""
        for i in range(n)
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:content="http://purl.org/rss/1.0/modules/content/" version="2.0">
<channel><title><![CDATA[MIT Open Learning - Medium]]></title><link>https://medium.com/open-learning</link>
<description>News from MIT Open Learning</description>{items}</channel></rss>""".encode()


def install_medium_news(server: DemoServer) -> dict[str, str]:
    server.route("/feed/open-learning", Response(200, medium_rss(), {"Content-Type": "text/xml"}))
    return {"MEDIUM_MIT_NEWS_URL": f"{server.base_url}/feed/open-learning"}


install = install_medium_news
