"""Podcasts: one YAML config per podcast (mitodl/open-podcast-data) + each podcast's RSS feed.

Transport: the config folder is listed through the GitHub contents API
(`PODCAST_CONFIG_URL`, default `api.github.com/repos/mitodl/open-podcast-data/contents/podcasts`
on `OPEN_PODCAST_DATA_BRANCH`), each `*.yaml` is read from its `download_url`; or the configs
come from a local file/folder (`PODCAST_CONFIG_PATH`) or one YAML URL. Then one GET per
`rss_url`. Config keys: `rss_url` (required), `podcast_title`, `topics` (comma string),
`offered_by` (offeror name or code), `apple_podcasts_url`, `google_podcasts_url`, `website`.

Field rules follow MIT Learn's `learning_resources/etl/podcast.py` (reference/mit-learn.md §1.2):
podcast readable_id = rss_url without scheme, title = `podcast_title` else the channel title,
image = channel `itunes:image`; episode readable_id = `guid` else link/enclosure URL without
scheme, description sanitised keeping links, url = link else audio, image = item `itunes:image`
else the podcast's, last_modified = pubDate, audio_url = enclosure, duration `itunes:duration`
→ ISO-8601, and the item's raw XML (`details.rss`, for the aggregate feed and transcripts).

Kind `episodes`: the payload is an RSS document (bytes) with the podcast's config as context (a
dict or YAML), or — what the extractor stores — a JSON envelope `{"config": {...}, "rss": "..."}`
so a page carries its own config. One page → the podcast (with its PODCAST_EPISODES list in feed
order) and its episodes.

Differences on purpose (reference/mit-learn.md §9): every RSS request has a timeout (MIT Learn's
had none); MIT Learn unpublished podcasts globally — here a feed that fails leaves the fetch
incomplete, so the guarded prune does not run and that podcast's episodes stay published (only
a podcast removed from the config, or an episode gone from a feed that was read, is pruned);
an empty config aborts instead of unpublishing every podcast.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
import yaml
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from learnflow.http import PermanentHttpError, SourceHttpError
from learnflow.models import (
    Availability,
    Image,
    Relationship,
    RelationType,
    Resource,
    ResourceRef,
    ResourceType,
    Topic,
    TransformOutput,
)
from learnflow.reference import reference_data
from learnflow.schedules import ingest_schedule
from learnflow.settings import SourceSettings
from sources._catalog import source_settings
from sources.base import (
    ExtractContext,
    RawPage,
    Source,
    clean_html,
    parse_datetime,
    transform_each,
    without_scheme,
)

log = structlog.get_logger(__name__)

ETL_SOURCE = "podcast"
PLATFORM = "podcast"
NS = {
    "itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd",
    "atom": "http://www.w3.org/2005/Atom",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "podcast": "https://podcastindex.org/namespace/1.0",
}
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)


class PodcastSettings(SourceSettings):
    """Where the podcast configs live (MIT Learn: OPEN_PODCAST_DATA_BRANCH, GitHub repo folder)."""

    open_podcast_data_branch: str = "master"
    podcast_config_url: str = (
        "https://api.github.com/repos/mitodl/open-podcast-data/contents/podcasts"
    )
    podcast_config_path: str = ""


def settings_for(settings: Any = None, options: dict[str, Any] | None = None) -> PodcastSettings:
    return source_settings(PodcastSettings, settings, options)


# ----------------------------------------------------------------------------------------------
# config


def config_problems(config: Any) -> list[str]:
    """MIT Learn's validate_podcast_config."""
    if not config:
        return ["podcast config data is empty"]
    if not isinstance(config, dict):
        return ["podcast config should be a mapping"]
    if not isinstance(config.get("rss_url"), str) or not config["rss_url"].strip():
        return ["required key 'rss_url' is not present"]
    return []


def read_config(raw: Any) -> list[dict]:
    """A config as a dict, YAML text/bytes, or a list of them → valid config dicts."""
    if isinstance(raw, bytes | bytearray):
        raw = bytes(raw).decode("utf-8", "replace")
    if isinstance(raw, str):
        try:
            raw = yaml.safe_load(raw)
        except yaml.YAMLError:
            return []
    items = raw if isinstance(raw, list) else [raw]
    return [c for c in items if not config_problems(c)]


def offeror_code(value: Any) -> str | None:
    """`offered_by` in a config is an offeror name ("OCW") or code: → the offeror code."""
    if not isinstance(value, str) or not value.strip():
        return None
    wanted = value.strip().lower()
    offerors = reference_data().offerors
    for code, row in offerors.items():
        if wanted in (code.lower(), str(row.get("name", "")).lower()):
            return code
    return None


def config_topics(config: dict) -> list[Topic]:
    raw = config.get("topics")
    if not isinstance(raw, str):
        return []
    names = [t.strip() for t in raw.split(",") if t.strip()]
    return [Topic(name=n) for n in reference_data().map_topics(names, None)]


# ----------------------------------------------------------------------------------------------
# RSS


def iso_duration(text: str | None) -> str | None:
    """`"01:02:03"`, `"17:16"`, `"1036"` → ISO-8601 (`PT1H2M3S`, `PT17M16S`, `PT17M16S`)."""
    if not text or not text.strip():
        return None
    parts = text.strip().split(":")
    if not all(re.fullmatch(r"\d+(\.\d+)?", p) for p in parts) or len(parts) > 3:
        return None
    seconds = 0
    for p in parts:
        seconds = seconds * 60 + int(float(p))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = "PT"
    if hours:
        out += f"{hours}H"
    if minutes:
        out += f"{minutes}M"
    if secs or not (hours or minutes):
        out += f"{secs}S"
    return out


def parse_rss(payload: Any) -> ET.Element:
    """RSS bytes/text → its <channel>; anything else is a ValueError."""
    if isinstance(payload, str):
        payload = payload.encode()
    if not isinstance(payload, bytes | bytearray):
        raise ValueError("a podcast page is an RSS document (bytes) or a JSON envelope")
    try:
        root = SafeET.fromstring(bytes(payload).lstrip())
    except (ET.ParseError, DefusedXmlException) as exc:
        raise ValueError(f"not an RSS document: {exc}") from exc
    channel = root.find("channel")
    if root.tag != "rss" or channel is None:
        raise ValueError("not an RSS document: no <rss><channel>")
    return channel


def _text(el: ET.Element, path: str) -> str | None:
    found = el.find(path, NS)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _itunes_image(el: ET.Element) -> str | None:
    found = el.find("itunes:image", NS)
    href = found.get("href") if found is not None else None
    return href.strip() if href and href.strip() else None


def _self_link(channel: ET.Element) -> str | None:
    for link in channel.findall("atom:link", NS):
        if link.get("rel") == "self" and link.get("href"):
            return link.get("href")
    return None


def transform_episode(
    xml: str, *, offered_by: str | None, topics: list[Topic], parent_image: Image | None
) -> Resource:
    """One `<item>` (its XML text, kept as `details.rss`) → a podcast_episode."""
    item = SafeET.fromstring(xml)
    enclosure = item.find("enclosure")
    audio_url = enclosure.get("url") if enclosure is not None else None
    if not audio_url:
        raise ValueError("episode has no enclosure url")
    link = _text(item, "link")
    readable_id = _text(item, "guid") or without_scheme(link or audio_url)
    title = _text(item, "title")
    if not title:
        raise ValueError("episode has no title")
    image_url = _itunes_image(item)
    return Resource(
        readable_id=readable_id,
        platform=PLATFORM,
        resource_type=ResourceType.podcast_episode,
        etl_source=ETL_SOURCE,
        offered_by=offered_by,
        title=title,
        description=clean_html(_text(item, "description"), links=True),
        url=link or audio_url,
        image=Image(url=image_url) if image_url else parent_image,
        last_modified=parse_datetime(_text(item, "pubDate")),
        topics=topics,
        availability=Availability.anytime,
        resource_category="Podcast Episode",
        published=True,
        details={
            "audio_url": audio_url,
            "episode_link": link,
            "duration": iso_duration(_text(item, "itunes:duration")),
            "rss": xml,
        },
    )


def _episode_key(xml: str) -> str | None:
    item = SafeET.fromstring(xml)
    return _text(item, "guid") or _text(item, "link")


def transform_feed(channel: ET.Element, config: dict) -> TransformOutput:
    """One podcast's channel + config → the podcast and its episodes (bad episodes quarantined)."""
    rss_url = config["rss_url"].strip()
    offered_by = offeror_code(config.get("offered_by"))
    topics = config_topics(config)
    image_url = _itunes_image(channel)
    image = Image(url=image_url) if image_url else None
    # Items travel as XML text: a quarantined one keeps its real XML as the raw item.
    episodes = transform_each(
        ETL_SOURCE,
        [ET.tostring(item, encoding="unicode") for item in channel.findall("item")],
        lambda xml: transform_episode(
            xml, offered_by=offered_by, topics=topics, parent_image=image
        ),
        _episode_key,
    )
    title = config.get("podcast_title") or _text(channel, "title")
    if not isinstance(title, str) or not title.strip():
        raise ValueError(f"podcast {rss_url} has no title")
    podcast = Resource(
        readable_id=without_scheme(rss_url),
        platform=PLATFORM,
        resource_type=ResourceType.podcast,
        etl_source=ETL_SOURCE,
        offered_by=offered_by,
        title=title.strip(),
        description=clean_html(_text(channel, "description"), links=True),
        url=config.get("website") if isinstance(config.get("website"), str) else None,
        image=image,
        topics=topics,
        availability=Availability.anytime,
        resource_category="Podcast",
        published=True,
        relationships=[
            Relationship(
                relation_type=RelationType.podcast_episodes,
                child=ResourceRef(
                    platform=PLATFORM, readable_id=e.readable_id, resource_type="podcast_episode"
                ),
                position=pos,
            )
            for pos, e in enumerate(episodes.resources)
        ],
        details={
            "rss_url": rss_url,
            "apple_podcasts_url": config.get("apple_podcasts_url"),
            "google_podcasts_url": config.get("google_podcasts_url"),
        },
    )
    return TransformOutput(
        resources=[podcast, *episodes.resources], quarantined=episodes.quarantined
    )


def _pick_config(channel: ET.Element, context: Sequence[Any]) -> dict:
    configs = [c for raw in context for c in read_config(raw)]
    self_link = _self_link(channel)
    if self_link:
        for c in configs:
            if without_scheme(c["rss_url"].strip()) == without_scheme(self_link):
                return c
    if len(configs) == 1:
        return configs[0]
    if not configs and self_link:
        return {"rss_url": self_link}
    raise ValueError("the podcast's config (with rss_url) must come as context")


def transform(kind: str, payload: Any, context: Sequence[Any] = ()) -> TransformOutput:
    """Pure: one podcast feed (envelope, or RSS + config context) → podcast and episodes."""
    if kind != "episodes":
        raise ValueError(f"unknown podcast kind {kind!r}")
    if isinstance(payload, dict) and "rss" in payload:
        configs = read_config(payload.get("config"))
        if not configs:
            raise ValueError(
                f"podcast envelope has no valid config: {config_problems(payload.get('config'))}"
            )
        return transform_feed(parse_rss(payload["rss"]), configs[0])
    channel = parse_rss(payload)
    return transform_feed(channel, _pick_config(channel, context))


# ----------------------------------------------------------------------------------------------
# extract


async def _configs(ctx: ExtractContext, cfg: PodcastSettings) -> list[dict]:
    if cfg.podcast_config_path:
        return _local_configs(Path(cfg.podcast_config_path))
    body = await ctx.http.get_bytes(
        cfg.podcast_config_url, params={"ref": cfg.open_podcast_data_branch}
    )
    if body is None:
        raise ValueError(f"podcast config not found at {cfg.podcast_config_url}")
    try:
        listing = json.loads(body)
    except ValueError:
        return read_config(body)  # one YAML document
    configs: list[dict] = []
    for entry in listing if isinstance(listing, list) else []:
        name = str(entry.get("name", ""))
        url = entry.get("download_url")
        if entry.get("type", "file") != "file" or not name.endswith((".yaml", ".yml")) or not url:
            continue
        ctx.http.allow(url)
        raw = await ctx.http.get_bytes(url)
        configs.extend(_logged(read_config(raw or b""), name))
    return configs


def _local_configs(path: Path) -> list[dict]:
    files = sorted(path.glob("*.y*ml")) if path.is_dir() else [path]
    return [c for f in files for c in _logged(read_config(f.read_bytes()), str(f))]


def _logged(configs: list[dict], where: str) -> list[dict]:
    if not configs:
        log.error("podcast.config_invalid", path=where)
    return configs


async def extract(ctx: ExtractContext) -> AsyncIterator[RawPage]:
    """One envelope page per podcast; a feed that fails is skipped and the fetch marked
    incomplete at the end (so nothing is pruned on a partial read)."""
    cfg = settings_for(ctx.settings, ctx.options)
    configs = await _configs(ctx, cfg)
    if not configs:
        raise ValueError("no valid podcast config: refusing to continue (would unpublish all)")
    failed: list[str] = []
    for config in configs:
        rss_url = config["rss_url"].strip()
        try:
            ctx.http.allow(rss_url)
            body = await ctx.http.get_bytes(rss_url)
            if body is None:
                raise PermanentHttpError(f"HTTP 404 from {rss_url}")
            channel = parse_rss(body)
        except (SourceHttpError, ValueError) as exc:
            log.warning("podcast.feed_failed", rss_url=rss_url, error=str(exc))
            failed.append(rss_url)
            continue
        envelope = {"config": config, "rss": body.decode("utf-8", "replace")}
        yield RawPage(
            kind="episodes",
            body=json.dumps(envelope).encode(),
            item_count=len(channel.findall("item")),
            url=rss_url,
        )
    if failed:
        raise PermanentHttpError(f"{len(failed)} podcast feed(s) failed: {', '.join(failed)}")


SOURCE = Source(
    name="podcasts",
    etl_source=ETL_SOURCE,
    kinds=("episodes",),
    transform=transform,
    extract=extract,
    resource_types=("podcast", "podcast_episode"),
    platform=PLATFORM,
    hosts=("api.github.com", "raw.githubusercontent.com"),
    urls=lambda s: [settings_for(s).podcast_config_url],
    description="Podcasts (open-podcast-data configs + RSS feeds)",
)

# When it runs (`learn schedules sync` creates these; cron in UTC).
SCHEDULES = (ingest_schedule("podcasts", ("0 6 * * *", "0 23 * * *"), timedelta(hours=7)),)
