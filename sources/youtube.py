"""YouTube: channels and playlists listed in a YAML config (mitodl/open-video-data) → videos and
playlists, from the YouTube Data API v3 (API key, `pageToken` pages, maxResults 50).

Config (`YOUTUBE_CONFIG_URL`): a list of channels `{channel_id, offered_by, create_videos
(default true), playlists: [{id, ignore?, create_videos?}]}`; playlist id `all` is a wildcard
over the channel's playlists. Field rules follow MIT Learn's `learning_resources/etl/youtube.py`
(reference/mit-learn.md §1.2): video readable_id = id, title `snippet.localized.title`,
description sanitised then cleaned of boilerplate (keyword lines, timestamps, MIT course-title
lines, URLs, the OCW comment policy), image `thumbnails.high`, last_modified `publishedAt`,
url `watch?v=<id>`, duration `contentDetails.duration`; playlist url `playlist?list=<id>`,
image `thumbnails.high` with the title as alt.

Kinds, all stored as YouTube sent them: `config` (the YAML), `playlists` (playlists.list
pages), `playlist_items` (playlistItems.list pages, `part=snippet,contentDetails` so each item
names its playlist) and `videos` (videos.list pages). `config` and `playlist_items` produce
nothing by themselves: they are the context that gives videos their offerer and playlists their
videos (PLAYLIST_VIDEOS, in playlist order) and create_videos flag. A playlist with
`create_videos: false` is loaded with its video ids in `details.video_ids` and no relationships:
MIT Learn links those to OCW lecture videos, which needs the OCW catalog (not done here).

Captions (MIT Learn's `get_youtube_transcripts`: per video, the manually created English track,
else the generated one): kind `transcripts` is one page `{"transcripts": {video id: text}}` the
videos pages read as context. The `ingest/youtube` schedule passes `options["transcripts"]`, so a
run GETs `YOUTUBE_CAPTIONS_BASE_URL/api/timedtext?v=<id>&lang=en&fmt=vtt` (then `&kind=asr`) for
each loaded video without a transcript (`overwrite`: every video) through the same HTTP layer;
every run carries the catalog's stored transcripts over (`sources/_transcripts.py`, shared with
OVS). The text is `details["transcript"]`, which the keyword and vector indexes read. Differs on
purpose: youtube_transcript_api scrapes the watch page for the track list and reads XML; here the
timedtext endpoint is asked for WebVTT directly (read like OVS captions, no Tika), and an empty
answer means "no such track". YouTube may answer unsigned requests with nothing: then videos
load without a transcript (logged as fetched=0), never fail; a mirror can be configured.

Kept as learnflow's for now (#16, not rebuilt yet; the fidelity tests pin them): no `VideoChannel`
resources (channels are only `details.channel_id`); a `create_videos: false` playlist is not
linked to existing videos (see above); video topics are not filled from similar resources or a
playlist's two most common topics.

Differences on purpose (reference/mit-learn.md §9): every request has a timeout; the API key
travels as a query parameter only and is never logged; an empty or invalid config aborts the
run (as MIT Learn) instead of unpublishing everything.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

import structlog
import yaml
from pydantic import SecretStr

from learnflow.http import SourceHttpError
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
from learnflow.reference import reference_data
from learnflow.schedules import DAY, ingest_schedule
from learnflow.settings import SourceSettings
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
    parse_datetime,
    transform_each,
)

log = structlog.get_logger(__name__)

ETL_SOURCE = "youtube"
PLATFORM = "youtube"
WILDCARD = "all"
MAX_RESULTS = 50
API_BASE = "https://www.googleapis.com/youtube/v3"
CAPTIONS_BASE = "https://www.youtube.com"
CAPTIONS_PATH = "/api/timedtext"

_KEYWORD_LINE = re.compile(
    r"^(Instructor|Course|View the complete course|License|YouTube Playlist|Chapters|"
    r"Watch this video in Chinese|MIT Open Learning|Instructors|Key moments|Speakers):",
    re.IGNORECASE,
)
_TIMESTAMP_LINE = re.compile(r"^\d+:\d+(?::\d+)?\s")
_COURSE_TITLE_LINE = re.compile(r"^MIT\s+[\dA-Za-z]+\.[\dA-Za-z]+\S*\s.+\d{4}\s*$")
OCW_COMMENT_POLICY = (
    "We encourage constructive comments and discussion on OCW's YouTube and other social media "
    "channels. Personal attacks, hate speech, trolling, and inappropriate comments are not "
    "allowed and may be removed."
)


class YoutubeSettings(SourceSettings):
    """MIT Learn's YOUTUBE_* settings (+ the API base, for tests and proxies)."""

    youtube_developer_key: SecretStr | None = None
    youtube_config_url: str = (
        "https://raw.githubusercontent.com/mitodl/open-video-data/master/youtube/channels.yaml"
    )
    youtube_api_base_url: str = API_BASE
    # Where captions are fetched (`/api/timedtext`): YouTube's own host by default; a base URL
    # that serves the same path (a mirror, the demo's or the tests' fixture server) otherwise.
    youtube_captions_base_url: str = CAPTIONS_BASE


def settings_for(settings: Any = None, options: dict[str, Any] | None = None) -> YoutubeSettings:
    return source_settings(YoutubeSettings, settings, options)


def unavailable(settings: Any) -> str | None:
    key = settings_for(settings).youtube_developer_key
    if key is None or not key.get_secret_value():
        return "YOUTUBE_DEVELOPER_KEY is not set"
    return None


# ----------------------------------------------------------------------------------------------
# config


def config_problems(configs: Any) -> list[str]:
    """MIT Learn's validate_channel_configs."""
    if not configs:
        return ["channel configs are empty"]
    if not isinstance(configs, list):
        return ["channel configs should be a list of mappings"]
    errors = []
    for n, channel in enumerate(configs):
        if not isinstance(channel, dict):
            return [f"channels[{n}] should be a mapping"]
        for key in ("channel_id", "playlists"):
            if key not in channel:
                errors.append(f"channels[{n}] has no {key!r}")
        playlists = channel.get("playlists") or []
        if not isinstance(playlists, list):
            errors.append(f"channels[{n}].playlists should be a list")
            continue
        for i, playlist in enumerate(playlists):
            if not isinstance(playlist, dict) or "id" not in playlist:
                errors.append(f"channels[{n}].playlists[{i}] has no 'id'")
    return errors


def read_config(raw: Any) -> list[dict]:
    if isinstance(raw, bytes | bytearray):
        raw = bytes(raw).decode("utf-8", "replace")
    if isinstance(raw, str):
        try:
            raw = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ValueError(f"YouTube config is not YAML: {exc}") from exc
    problems = config_problems(raw)
    if problems:
        raise ValueError(f"invalid YouTube config: {'; '.join(problems)}")
    return raw


def offeror(code: Any) -> str | None:
    """MIT Learn keeps `offered_by` only when it is a known offeror code."""
    return code if isinstance(code, str) and code in reference_data().offerors else None


class Config:
    """What the transforms need from the config: per channel offerer and per playlist rules."""

    def __init__(self, channels: list[dict] | None = None):
        self.channels = {str(c["channel_id"]): c for c in channels or []}

    @classmethod
    def from_context(cls, context: Sequence[Any]) -> Config:
        channels: list[dict] = []
        for raw in context:
            if isinstance(raw, bytes | bytearray | str):
                try:
                    channels.extend(read_config(raw))
                except ValueError:
                    continue
            elif isinstance(raw, list) and not config_problems(raw):
                channels.extend(raw)
        return cls(channels)

    def offered_by(self, channel_id: Any) -> str | None:
        return offeror((self.channels.get(str(channel_id)) or {}).get("offered_by"))

    def playlist_rule(self, channel_id: Any, playlist_id: str) -> tuple[bool, bool]:
        """(keep, create_videos) for a playlist of a channel; no config keeps everything."""
        channel = self.channels.get(str(channel_id))
        if channel is None:
            return (not self.channels), True
        channel_create = channel.get("create_videos", True) is not False
        rules = {str(p.get("id")): p for p in channel.get("playlists") or [] if isinstance(p, dict)}
        rule = rules.get(playlist_id)
        if rule is None:
            rule = rules.get(WILDCARD, {"ignore": True})
            create = channel_create
        else:
            create = rule.get("create_videos", channel_create) is not False
        return not rule.get("ignore", False), create


# ----------------------------------------------------------------------------------------------
# transform


def clean_description(text: str | None) -> str:
    """MIT Learn's clean_youtube_description: drop boilerplate lines and bare URLs."""
    if not text:
        return ""
    text = text.replace(OCW_COMMENT_POLICY, "")
    kept = [
        line
        for line in text.split("\n")
        if not _KEYWORD_LINE.match(line)
        and not _TIMESTAMP_LINE.match(line)
        and not _COURSE_TITLE_LINE.match(line)
        and "https://" not in line
        and "http://" not in line
    ]
    return re.sub(r"(\s*\n){3,}", "\n\n", "\n".join(kept).strip())


def _high_thumbnail(snippet: dict) -> str | None:
    url = ((snippet.get("thumbnails") or {}).get("high") or {}).get("url")
    return url if isinstance(url, str) and url else None


def transform_video(video: dict, config: Config, transcript: str | None = None) -> Resource:
    """One videos.list item → a video resource; `transcript` (its English captions as text) is
    searchable as the video's content."""
    video_id = video["id"]
    if not isinstance(video_id, str) or not video_id:
        raise ValueError("video has no id")
    snippet = video["snippet"]
    title = (snippet.get("localized") or {}).get("title") or snippet.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ValueError("video has no title")
    description = snippet.get("description")
    image = _high_thumbnail(snippet)
    duration = (video.get("contentDetails") or {}).get("duration")
    return Resource(
        readable_id=video_id,
        platform=PLATFORM,
        resource_type=ResourceType.video,
        etl_source=ETL_SOURCE,
        offered_by=config.offered_by(snippet.get("channelId")),
        title=title.strip(),
        description=clean_description(clean_html(description))
        if isinstance(description, str)
        else None,
        url=f"https://www.youtube.com/watch?v={video_id}",
        image=Image(url=image) if image else None,
        last_modified=parse_datetime(snippet.get("publishedAt")),
        availability=Availability.anytime,
        resource_category="Video",
        published=True,
        details={
            "duration": duration if isinstance(duration, str) else None,
            "youtube_id": video_id,
            "channel_id": snippet.get("channelId"),
            **({"transcript": transcript} if transcript else {}),
        },
    )


def _d(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _playlist_members(pages: Sequence[Any]) -> dict[str | None, list[str]]:
    """playlistId → video ids in order, from playlistItems pages (None: items not naming one).

    Context pages are not this page's to judge: malformed parts are skipped, never raised."""
    members: dict[str | None, list[str]] = {}
    for page in pages:
        if _d(page).get("kind") != "youtube#playlistItemListResponse":
            continue
        items = page.get("items")
        for item in items if isinstance(items, list) else []:
            item = _d(item)
            snippet = _d(item.get("snippet"))
            video_id = _d(item.get("contentDetails")).get("videoId") or _d(
                snippet.get("resourceId")
            ).get("videoId")
            playlist_id = snippet.get("playlistId")
            if not isinstance(playlist_id, str):
                playlist_id = None
            if isinstance(video_id, str) and video_id not in members.setdefault(playlist_id, []):
                members[playlist_id].append(video_id)
    return members


def transform_playlist(
    playlist: dict, config: Config, members: dict[str | None, list[str]], only_one: bool
) -> Resource | None:
    playlist_id = playlist["id"]
    if not isinstance(playlist_id, str) or not playlist_id:
        raise ValueError("playlist has no id")
    snippet = playlist["snippet"]
    channel_id = snippet.get("channelId")
    keep, create_videos = config.playlist_rule(channel_id, playlist_id)
    if not keep:
        return None
    title = snippet.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ValueError("playlist has no title")
    video_ids = list(members.get(playlist_id) or [])
    if not video_ids and only_one:
        video_ids = list(members.get(None) or [])  # items without snippet: the one playlist
    image = _high_thumbnail(snippet)
    return Resource(
        readable_id=playlist_id,
        platform=PLATFORM,
        resource_type=ResourceType.video_playlist,
        etl_source=ETL_SOURCE,
        offered_by=config.offered_by(channel_id),
        title=title.strip(),
        description=clean_description(clean_html(snippet.get("description")))
        if isinstance(snippet.get("description"), str)
        else None,
        url=f"https://www.youtube.com/playlist?list={playlist_id}",
        image=Image(url=image, alt=title.strip()) if image else None,
        last_modified=parse_datetime(snippet.get("publishedAt")),
        availability=Availability.anytime,
        resource_category="Video Playlist",
        published=True,
        relationships=[
            Relationship(
                relation_type=RelationType.playlist_videos,
                child=ResourceRef(platform=PLATFORM, readable_id=vid, resource_type="video"),
                position=pos,
            )
            for pos, vid in enumerate(video_ids)
        ]
        if create_videos
        else [],
        details={
            "channel_id": channel_id,
            "channel_title": snippet.get("channelTitle"),
            "create_videos": create_videos,
            "video_ids": video_ids,
        },
    )


def _page_items(payload: Any, kind: str) -> list[Any]:
    if not isinstance(payload, dict) or not isinstance(payload.get("items"), list):
        raise ValueError(f"a YouTube {kind} page is an API response with an items list")
    expected = {
        "videos": "youtube#videoListResponse",
        "playlists": "youtube#playlistListResponse",
        "playlist_items": "youtube#playlistItemListResponse",
    }[kind]
    if payload.get("kind", expected) != expected:
        raise ValueError(f"expected a {expected}, got {payload.get('kind')!r}")
    return payload["items"]


def transform(kind: str, payload: Any, context: Sequence[Any] = ()) -> TransformOutput:
    """Pure: a videos / playlists page (config and playlist items as context) → resources."""
    if kind == "config":
        read_config(payload)  # validated; the config is context for the other kinds
        return TransformOutput()
    if kind == "playlist_items":
        _page_items(payload, kind)
        return TransformOutput()
    if kind == TRANSCRIPTS_KIND:
        return TransformOutput()  # context for the videos pages only
    if kind == "videos":
        config = Config.from_context(context)
        texts = transcripts_in(context)
        return transform_each(
            ETL_SOURCE,
            _page_items(payload, kind),
            lambda v: transform_video(v, config, texts.get(v.get("id"))),
            lambda v: v.get("id") if isinstance(v, dict) else None,
        )
    if kind == "playlists":
        items = _page_items(payload, kind)
        config = Config.from_context(context)
        members = _playlist_members(context)
        return transform_each(
            ETL_SOURCE,
            items,
            lambda p: transform_playlist(p, config, members, only_one=len(items) == 1),
            lambda p: p.get("id") if isinstance(p, dict) else None,
        )
    raise ValueError(f"unknown YouTube kind {kind!r}")


# ----------------------------------------------------------------------------------------------
# captions


def caption_requests(cfg: YoutubeSettings, video_id: str) -> list[tuple[str, dict[str, str]]]:
    """The GETs for one video's English captions, in MIT Learn's order: the manually created
    track, then the generated one (`kind=asr`); `fmt=vtt` asks for WebVTT."""
    url = cfg.youtube_captions_base_url.rstrip("/") + CAPTIONS_PATH
    manual = {"v": video_id, "lang": "en", "fmt": "vtt"}
    return [(url, manual), (url, {**manual, "kind": "asr"})]


async def fetch_transcripts(
    http: Any, video_ids: Sequence[str], cfg: YoutubeSettings, skip: set[str] = frozenset()
) -> dict[str, str]:
    """GET the English captions of each video not in `skip` → {video id: transcript text}. The
    endpoint answers an empty body (or 404) for a track that does not exist: the next request is
    tried; a caption that fails is logged and left out (the video still loads)."""
    out: dict[str, str] = {}
    for video_id in video_ids:
        if video_id in skip:
            continue
        for url, params in caption_requests(cfg, video_id):
            try:
                body = await http.get_bytes(url, params=params)
            except SourceHttpError as exc:
                log.warning("youtube.caption_failed", video_id=video_id, error=str(exc))
                break
            text = vtt_text(body) if body else ""
            if text:
                out[video_id] = text
                break
    return out


# ----------------------------------------------------------------------------------------------
# extract


class _Api:
    def __init__(self, ctx: ExtractContext, cfg: YoutubeSettings):
        self.ctx = ctx
        self.base = cfg.youtube_api_base_url.rstrip("/")
        key = cfg.youtube_developer_key
        if key is None or not key.get_secret_value():
            raise ValueError("YOUTUBE_DEVELOPER_KEY is not set")
        self._key = key

    async def pages(self, resource: str, **params: str) -> AsyncIterator[tuple[bytes, dict]]:
        """Every page of one list call, following nextPageToken."""
        token: str | None = None
        for _ in range(1000):
            query = {**params, "maxResults": str(MAX_RESULTS), "key": self._key.get_secret_value()}
            if token:
                query["pageToken"] = token
            body = await self.ctx.http.get_bytes(f"{self.base}/{resource}", params=query)
            if body is None:
                raise ValueError(f"YouTube {resource} not found")
            page = json.loads(body)
            yield body, page
            token = page.get("nextPageToken")
            if not token:
                return
        raise ValueError(f"too many YouTube {resource} pages")


async def extract(ctx: ExtractContext) -> AsyncIterator[RawPage]:
    """config → per channel: its playlists → per kept playlist: its items → their videos;
    the playlists pages are yielded last so their videos load first."""
    cfg = settings_for(ctx.settings, ctx.options)
    api = _Api(ctx, cfg)
    raw_config = await ctx.http.get_bytes(cfg.youtube_config_url)
    channels = read_config(raw_config or b"")  # empty/invalid: abort, never mass-unpublish
    config = Config(channels)
    wanted = ctx.options.get("channel_ids")
    yield RawPage(kind="config", body=raw_config or b"", item_count=len(channels))
    seen_videos: set[str] = set()
    loaded: list[str] = []  # the videos YouTube returned, whose captions a run may fetch
    # Playlists go last: the loader links a playlist only to videos it already has.
    playlist_pages: list[RawPage] = []
    for channel in channels:
        channel_id = str(channel["channel_id"])
        if wanted and channel_id not in wanted:
            continue
        rules = [str(p["id"]) for p in channel.get("playlists") or []]
        if WILDCARD in rules:
            listing = api.pages("playlists", part="snippet", channelId=channel_id)
        else:
            listing = api.pages("playlists", part="snippet", id=",".join(rules))
        kept: list[tuple[str, bool]] = []
        async for body, page in listing:
            for playlist in page.get("items") or []:
                keep, create = config.playlist_rule(channel_id, playlist.get("id"))
                if keep:
                    kept.append((playlist["id"], create))
            playlist_pages.append(
                RawPage(kind="playlists", body=body, item_count=len(page.get("items") or []))
            )
        for playlist_id, create_videos in kept:
            video_ids: list[str] = []
            async for body, page in api.pages(
                "playlistItems", part="snippet,contentDetails", playlistId=playlist_id
            ):
                items = page.get("items") or []
                video_ids += [
                    i["contentDetails"]["videoId"]
                    for i in items
                    if (i.get("contentDetails") or {}).get("videoId")
                ]
                yield RawPage(kind="playlist_items", body=body, item_count=len(items))
            if not create_videos:
                continue
            todo = [v for v in video_ids if v not in seen_videos]
            seen_videos.update(todo)
            for start in range(0, len(todo), MAX_RESULTS):
                chunk = todo[start : start + MAX_RESULTS]
                async for body, page in api.pages(
                    "videos", part="snippet,contentDetails", id=",".join(chunk)
                ):
                    items = page.get("items") or []
                    loaded += [i["id"] for i in items if isinstance(i.get("id"), str)]
                    yield RawPage(kind="videos", body=body, item_count=len(items))
    for page in playlist_pages:
        yield page
    texts = await carried_and_fetched(
        ctx,
        ETL_SOURCE,
        lambda skip: fetch_transcripts(ctx.http, list(dict.fromkeys(loaded)), cfg, skip),
    )
    yield RawPage(kind=TRANSCRIPTS_KIND, body=transcripts_page(texts), item_count=0)


SOURCE = Source(
    name="youtube",
    etl_source=ETL_SOURCE,
    kinds=("videos", "playlists", "playlist_items", "config", TRANSCRIPTS_KIND),
    transform=transform,
    extract=extract,
    context_kinds={
        "videos": ("config", TRANSCRIPTS_KIND),
        "playlists": ("config", "playlist_items"),
    },
    resource_types=("video", "video_playlist"),
    platform=PLATFORM,
    hosts=(
        "www.googleapis.com",
        "youtube.googleapis.com",
        "raw.githubusercontent.com",
        "www.youtube.com",
    ),
    credentials_setting="youtube_developer_key",
    unavailable=unavailable,
    urls=lambda s: [
        settings_for(s).youtube_config_url,
        settings_for(s).youtube_api_base_url,
        settings_for(s).youtube_captions_base_url,
    ],
    description="YouTube channels and playlists (Data API v3)",
)

# When it runs (`learn schedules sync` creates these; cron in UTC).
# Every run fetches the captions of videos that have no transcript yet (the `transcripts` option;
# MIT Learn runs its YouTube transcripts job on demand): new videos become searchable by what
# is said in them on the day they load.
SCHEDULES = (ingest_schedule("youtube", "30 8 * * *", DAY, options={"transcripts": "true"}),)
