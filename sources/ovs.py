"""ODL Video Service (OVS): public videos and their collections (as playlists).

Transport: the public DRF API `OVS_API_BASE_URL/api/v0/public/videos/?include_in_learn=true`,
no auth, `next` pages (each `next` keeps `include_in_learn=true`). Field rules follow MIT Learn's
`learning_resources/etl/ovs.py` (reference/mit-learn.md §1.2): video readable_id = `key`, url =
an allow-listed `cta_link` else `{OVS_API_BASE_URL}/videos/<key>`, image = first thumbnail,
duration seconds → ISO-8601, streaming URL = first `.m3u8` source, caption URLs on the CloudFront
host of the video's media; a collection becomes a `video_playlist` (`/collections/<key>`), and a
collection `for_shorts` makes its videos "Video Short". Only `is_public` videos with status
"Complete" that belong to a collection are loaded (MIT Learn's extract filter, applied here in
the transform so the raw page stays as OVS sent it).

Kinds: `videos` (a DRF page → video resources) and `playlists` (the collections, with every
video of the run as context → playlist resources with their full PLAYLIST_VIDEOS list; a playlist
must see all pages at once because the loader replaces a parent's relationships).

Transcripts (MIT Learn's `get_ovs_transcripts` job): kind `transcripts` is one page
`{"transcripts": {key: text}}` the videos pages read as context. The `ingest/ovs-transcripts`
schedule (`options["transcripts"]`) GETs the English WebVTT captions of each video without a
transcript (`overwrite`: of every video) through the same HTTP layer, from the caption URL or
`OVS_CAPTIONS_BASE_URL`; every run carries the catalog's stored transcripts over, so a run
without the option keeps them. The text is `details["transcript"]`, which the keyword and vector
indexes read (`search_doc`). The OVS webhook fetches the posted video's captions too. WebVTT is
read directly (`sources/_transcripts.py`) instead of through Tika.

Differences on purpose (reference/mit-learn.md §9): every request has a timeout; every media URL
(sources, thumbnails, captions, cta_link) must be https on `OVS_ALLOWED_MEDIA_HOSTS` or the API
host, with no userinfo or backslash (the webhook's rule, `learnflow.contracts.ovs`); a `next`
link to another host is refused; a run that finds no playlist fails instead of unpublishing
everything.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import structlog

from learnflow.contracts.ovs import media_url_problem
from learnflow.http import PermanentHttpError, SourceHttpError
from learnflow.models import (
    Availability,
    Image,
    Relationship,
    RelationType,
    Resource,
    ResourceRef,
    ResourceType,
    TransformOutput,
)
from learnflow.schedules import DAY, ingest_schedule
from learnflow.settings import OvsMediaHosts, SourceSettings
from sources._catalog import source_settings
from sources._transcripts import (
    TRANSCRIPTS_KIND,
    carried_and_fetched,
    transcripts_in,
    transcripts_page,
    vtt_text,
)
from sources.base import (
    ExtractContext,
    RawPage,
    Source,
    clean_html,
    items_of,
    parse_datetime,
    transform_each,
)

log = structlog.get_logger(__name__)

ETL_SOURCE = "ovs"
PLATFORM = "ovs"
API_PATH = "/api/v0/public/videos/"


class OvsSettings(SourceSettings, OvsMediaHosts):
    """OVS_* settings (MIT Learn's names); OVS_ALLOWED_MEDIA_HOSTS is a comma list."""

    ovs_api_base_url: str = "https://video.odl.mit.edu"
    # Where English captions are fetched: empty = the caption URL the video lists (its
    # CloudFront host); a base URL serves the same paths (a mirror, or the tests' fixture server).
    ovs_captions_base_url: str = ""

    @property
    def base(self) -> str:
        return self.ovs_api_base_url.rstrip("/")

    @property
    def videos_url(self) -> str:
        return f"{self.base}{API_PATH}"

    def media_hosts(self) -> frozenset[str]:
        hosts = set(self.ovs_allowed_media_hosts)  # already normalised by _split
        hosts.add((urlsplit(self.base).hostname or "").lower())
        return frozenset(hosts)


def settings_for(settings: Any = None, options: dict[str, Any] | None = None) -> OvsSettings:
    return source_settings(OvsSettings, settings, options)


def allowed(url: Any, hosts: frozenset[str]) -> str | None:
    """The URL when it is a string on an allowed media host over https, else None."""
    if not isinstance(url, str) or not url:
        return None
    return None if media_url_problem(url, hosts) else url


def iso_duration(seconds: Any) -> str:
    """3661.0 → "PT1H1M1S"; 0 or missing → "PT0S" (MIT Learn's rule)."""
    total = int(float(seconds or 0))
    if total < 0:
        raise ValueError(f"negative duration {seconds!r}")
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    out = "PT"
    if hours:
        out += f"{hours}H"
    if minutes:
        out += f"{minutes}M"
    if secs or not (hours or minutes):
        out += f"{secs}S"
    return out


def is_loadable(video: Any) -> bool:
    """MIT Learn's filter: public, transcoded ("Complete") and in a collection."""
    if not isinstance(video, dict):
        return True  # let the transform quarantine it with a reason
    collection = video.get("collection")
    return (
        video.get("is_public") is True
        and video.get("status") == "Complete"
        and isinstance(collection, dict)
        and bool(collection.get("key"))
    )


def _media_host(video: dict, hosts: frozenset[str]) -> str | None:
    """The CloudFront host of the video's thumbnails (else sources): captions live there."""
    candidates = [t.get("cloudfront_url") for t in video.get("videothumbnail_set") or []]
    candidates += [s.get("src") for s in video.get("sources") or []]
    for url in candidates:
        if allowed(url, hosts):
            return urlsplit(url).hostname
    return None


def _caption_urls(video: dict, hosts: frozenset[str]) -> list[dict[str, str]]:
    host = _media_host(video, hosts)
    if not host:
        return []
    out = []
    for sub in video.get("videosubtitle_set") or []:
        key = sub.get("s3_object_key")
        if not isinstance(key, str) or not key or key.startswith("/") or ".." in key.split("/"):
            continue
        url = allowed(f"https://{host}/{key}", hosts)
        if url:
            out.append(
                {
                    "language": str(sub.get("language") or "en"),
                    "language_name": str(sub.get("language_name") or ""),
                    "url": url,
                }
            )
    return out


def english_caption_url(video: dict, cfg: OvsSettings) -> str | None:
    """The URL to GET the video's English captions from (MIT Learn's _fetch_transcript reads the
    first caption whose language is "en"), or None."""
    for caption in _caption_urls(video, cfg.media_hosts()):
        if caption["language"] == "en":
            if cfg.ovs_captions_base_url:
                return cfg.ovs_captions_base_url.rstrip("/") + urlsplit(caption["url"]).path
            return caption["url"]
    return None


async def fetch_transcripts(
    http: Any, videos: Sequence[dict], cfg: OvsSettings, skip: set[str] = frozenset()
) -> dict[str, str]:
    """GET the English captions of each video not in `skip` → {key: transcript text}; a caption
    that fails is logged and left out (the video still loads)."""
    out: dict[str, str] = {}
    for video in videos:
        key = video.get("key")
        url = english_caption_url(video, cfg) if isinstance(key, str) else None
        if not url or key in skip:
            continue
        try:
            body = await http.get_bytes(url)
        except SourceHttpError as exc:
            log.warning("ovs.caption_failed", key=key, url=url, error=str(exc))
            continue
        text = vtt_text(body) if body else ""
        if text:
            out[key] = text
    return out


def transform_video(
    video: dict, cfg: OvsSettings | None = None, transcript: str | None = None
) -> Resource:
    """One OVS video dict (the public API's shape, also the webhook's) → a video resource;
    `transcript` (the English captions as text) is searchable as the video's content."""
    cfg = cfg or settings_for()
    hosts = cfg.media_hosts()
    key = video["key"]
    if not isinstance(key, str) or not key:
        raise ValueError("video has no key")
    title = video["title"]
    if not isinstance(title, str) or not title.strip():
        raise ValueError("video has no title")
    thumbs = [t.get("cloudfront_url") for t in video.get("videothumbnail_set") or []]
    cover = allowed(thumbs[0], hosts) if thumbs else None
    streaming = next(
        (
            s["src"]
            for s in video.get("sources") or []
            if isinstance(s.get("src"), str)
            and urlsplit(s["src"]).path.endswith(".m3u8")
            and allowed(s["src"], hosts)
        ),
        None,
    )
    collection = video.get("collection") or {}
    shorts = bool(collection.get("for_shorts"))
    description = video.get("description")
    youtube_id = video.get("youtube_id")
    return Resource(
        readable_id=key,
        platform=PLATFORM,
        resource_type=ResourceType.video,
        etl_source=ETL_SOURCE,
        title=title.strip(),
        description=(clean_html(description) or None) if isinstance(description, str) else None,
        url=allowed(video.get("cta_link"), hosts) or f"{cfg.base}/videos/{key}",
        image=Image(url=cover, alt=title.strip()) if cover else None,
        last_modified=parse_datetime(video.get("created_at")),
        availability=Availability.anytime,
        resource_category="Video Short" if shorts else "Video",
        published=True,
        details={
            "duration": iso_duration(video.get("duration")),
            "streaming_url": streaming,
            "caption_urls": _caption_urls(video, hosts),
            "cover_image_url": cover or "",
            "youtube_id": youtube_id if isinstance(youtube_id, str) else None,
            "collection": collection.get("key"),
            **({"transcript": transcript} if transcript else {}),
        },
    )


def transform_playlist(collection: dict, video_keys: list[str], cfg: OvsSettings) -> Resource:
    """One OVS collection → a video_playlist with its videos in API order."""
    key = collection["key"]
    if not isinstance(key, str) or not key:
        raise ValueError("collection has no key")
    title = collection.get("title")
    description = collection.get("description")
    return Resource(
        readable_id=key,
        platform=PLATFORM,
        resource_type=ResourceType.video_playlist,
        etl_source=ETL_SOURCE,
        title=title.strip() if isinstance(title, str) and title.strip() else key,
        description=(clean_html(description) or None) if isinstance(description, str) else None,
        url=f"{cfg.base}/collections/{key}",
        availability=Availability.anytime,
        resource_category="Video Playlist",
        published=True,
        relationships=[
            Relationship(
                relation_type=RelationType.playlist_videos,
                child=ResourceRef(
                    platform=PLATFORM, readable_id=vk, resource_type=ResourceType.video
                ),
                position=pos,
            )
            for pos, vk in enumerate(video_keys)
        ],
        details={"channel_id": "ovs", "for_shorts": bool(collection.get("for_shorts"))},
    )


def _split_pages(pages: Sequence[Any]) -> tuple[list[Any], list[dict]]:
    """Videos and collections from videos pages, video lists and collection lists."""
    videos: list[Any] = []
    collections: list[dict] = []
    for page in pages:
        if not ((isinstance(page, dict) and "results" in page) or isinstance(page, list)):
            continue
        for item in items_of(page):
            if isinstance(item, dict) and "collection" not in item and "status" not in item:
                collections.append(item)
            else:
                videos.append(item)
    return videos, collections


def transform(kind: str, payload: Any, context: Sequence[Any] = ()) -> TransformOutput:
    """Pure: a videos page → videos; `playlists` → one playlist per collection seen in the
    payload and context pages (the payload may be the collections list or a videos page)."""
    cfg = settings_for()
    if kind == TRANSCRIPTS_KIND:
        return TransformOutput()  # context for the videos pages only
    if kind == "videos":
        videos = [v for v in items_of(payload) if is_loadable(v)]
        texts = transcripts_in(context)
        return transform_each(
            ETL_SOURCE,
            videos,
            lambda v: transform_video(v, cfg, texts.get(v.get("key"))),
            lambda v: v.get("key") if isinstance(v, dict) else None,
        )
    if kind == "playlists":
        items_of(payload)  # a wrong-shaped payload raises ValueError
        videos, listed = _split_pages([payload, *context])
        collections: dict[str, dict] = {}
        members: dict[str, list[str]] = {}
        for c in listed:
            if isinstance(c.get("key"), str) and c["key"]:
                collections.setdefault(c["key"], c)
        for v in videos:
            if not is_loadable(v) or not isinstance(v, dict):
                continue
            ckey, vkey = v["collection"]["key"], v.get("key")
            if not isinstance(ckey, str):
                continue
            collections.setdefault(ckey, v["collection"])
            if isinstance(vkey, str) and vkey and vkey not in members.setdefault(ckey, []):
                members[ckey].append(vkey)
        return transform_each(
            ETL_SOURCE,
            list(collections.values()),
            lambda c: transform_playlist(c, members.get(c.get("key"), []), cfg),
            lambda c: c.get("key") if isinstance(c, dict) else None,
        )
    raise ValueError(f"unknown OVS kind {kind!r}")


def _with_include(url: str) -> str:
    """Every page URL carries include_in_learn=true (a `next` link may drop it)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not any(k == "include_in_learn" for k, _ in query):
        query.append(("include_in_learn", "true"))
    return urlunsplit(parts._replace(query=urlencode(query)))


async def extract(ctx: ExtractContext) -> AsyncIterator[RawPage]:
    """Every videos page, then the collections seen (kind `playlists`)."""
    cfg = settings_for(ctx.settings, ctx.options)
    first = cfg.videos_url
    host = urlsplit(first).netloc
    url: str | None = first
    collections: dict[str, dict] = {}
    loadable: list[dict] = []
    for _ in range(int(ctx.options.get("max_pages", 10_000))):
        if not url:
            break
        url = _with_include(url)
        body = await ctx.http.get_bytes(url)
        if body is None:
            raise PermanentHttpError(f"HTTP 404 from {url}")
        page = json.loads(body)
        if not isinstance(page, dict) or not isinstance(page.get("results"), list):
            raise ValueError(f"OVS page at {url} has no results list")
        for v in page["results"]:
            if is_loadable(v):
                loadable.append(v)
                coll = v["collection"]
                collections.setdefault(coll["key"], coll)
        yield RawPage(kind="videos", body=body, item_count=len(page["results"]), url=url)
        nxt = page.get("next")
        if nxt and urlsplit(nxt).netloc != host:
            raise PermanentHttpError(f"`next` link leaves {host}: {nxt}")
        url = nxt
    else:
        raise PermanentHttpError(f"too many pages from {first}")
    if not collections:
        # MIT Learn aborts here too: zero playlists would unpublish every OVS resource.
        raise ValueError("OVS returned no playlist (no public, complete video in a collection)")
    body = json.dumps(list(collections.values())).encode()
    yield RawPage(kind="playlists", body=body, item_count=len(collections), url=first)
    texts = await carried_and_fetched(
        ctx, ETL_SOURCE, lambda skip: fetch_transcripts(ctx.http, loadable, cfg, skip)
    )
    yield RawPage(kind=TRANSCRIPTS_KIND, body=transcripts_page(texts), item_count=0, url=first)


def _urls(cfg: OvsSettings) -> list[str]:
    """The API, the media hosts (captions) and a captions mirror: the fetch's allow-list."""
    urls = [cfg.videos_url, *(f"https://{h}/" for h in sorted(cfg.ovs_allowed_media_hosts))]
    return urls + ([cfg.ovs_captions_base_url] if cfg.ovs_captions_base_url else [])


SOURCE = Source(
    name="ovs",
    etl_source=ETL_SOURCE,
    kinds=("videos", "playlists", TRANSCRIPTS_KIND),
    transform=transform,
    extract=extract,
    context_kinds={"playlists": ("videos",), "videos": (TRANSCRIPTS_KIND,)},
    resource_types=("video", "video_playlist"),
    platform=PLATFORM,
    hosts=("video.odl.mit.edu",),
    urls=lambda s: _urls(settings_for(s)),
    description="ODL Video Service public videos and collections",
)

# When it runs (`learn schedules sync` creates these; cron in UTC).
SCHEDULES = (
    ingest_schedule("ovs", "0 9 * * *", DAY),
    ingest_schedule(
        "ovs", "30 9 * * *", DAY, options={"transcripts": "true"}, suffix="-transcripts"
    ),
)
