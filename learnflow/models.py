"""The one resource model every source transforms into (MIT Learn's catalog vocabulary).

Natural keys follow MIT Learn: a resource is unique on (platform, readable_id, resource_type),
a run on (resource, run_id), a content file on (run, key), a feed item on its guid.
Transforms emit these models; the loader turns them into rows; the indexers read them back.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from learnflow.fastjson import canonical


class ResourceType(StrEnum):
    course = "course"
    program = "program"
    learning_path = "learning_path"
    podcast = "podcast"
    podcast_episode = "podcast_episode"
    video = "video"
    video_playlist = "video_playlist"
    document = "document"


class FeedType(StrEnum):
    news = "news"
    events = "events"


class RelationType(StrEnum):
    program_courses = "PROGRAM_COURSES"
    program_programs = "PROGRAM_PROGRAMS"
    learning_path_items = "LEARNING_PATH_ITEMS"
    podcast_episodes = "PODCAST_EPISODES"
    playlist_videos = "PLAYLIST_VIDEOS"
    course_learning_materials = "COURSE_LEARNING_MATERIALS"


class CertificationType(StrEnum):
    none = "none"
    completion = "completion"
    micromasters = "micromasters"
    professional = "professional"


class Availability(StrEnum):
    dated = "dated"
    anytime = "anytime"


class Delivery(StrEnum):
    online = "online"
    hybrid = "hybrid"
    in_person = "in_person"
    offline = "offline"


class Pace(StrEnum):
    self_paced = "self_paced"
    instructor_paced = "instructor_paced"


class Format(StrEnum):
    synchronous = "synchronous"
    asynchronous = "asynchronous"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)


class Price(_Model):
    amount: Decimal
    currency: str = "USD"


class Image(_Model):
    url: str
    alt: str | None = None
    description: str | None = None


class Instructor(_Model):
    full_name: str
    first_name: str | None = None
    last_name: str | None = None


class Department(_Model):
    department_id: str
    name: str


class Topic(_Model):
    name: str


class CourseNumber(_Model):
    value: str
    listing_type: str = "primary"
    primary: bool = True
    department: Department | None = None
    sort_coursenum: str | None = None


class Run(_Model):
    run_id: str
    title: str | None = None
    description: str | None = None
    full_description: str | None = None
    # MIT Learn: the later of the course's and the run's modification times (edX).
    last_modified: datetime | None = None
    # A run sold under a B2B contract (MITx Online `b2b_contract`); such runs are variants.
    is_b2b: bool = False
    url: str | None = None
    image: Image | None = None
    published: bool = True
    is_variant: bool = False
    languages: list[str] = Field(default_factory=list)
    level: list[str] = Field(default_factory=list)
    semester: str | None = None
    year: int | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    enrollment_start: datetime | None = None
    enrollment_end: datetime | None = None
    instructors: list[Instructor] = Field(default_factory=list)
    prices: list[Price] = Field(default_factory=list)
    delivery: list[Delivery] = Field(default_factory=list)
    availability: Availability | None = None
    pace: list[Pace] = Field(default_factory=list)
    format: list[Format] = Field(default_factory=list)
    location: str | None = None
    duration: str | None = None
    time_commitment: str | None = None
    min_weeks: int | None = None
    max_weeks: int | None = None
    min_weekly_hours: int | None = None
    max_weekly_hours: int | None = None
    status: str | None = None


class ResourceRef(_Model):
    """A pointer to another resource by its natural key (never a database id)."""

    platform: str
    readable_id: str
    resource_type: ResourceType


class Relationship(_Model):
    relation_type: RelationType
    child: ResourceRef
    position: int = 0


class ContentFile(_Model):
    """A file or page inside a course run (OLX archives, OCW, Canvas, marketing pages)."""

    key: str
    run_id: str | None = None
    title: str | None = None
    content_title: str | None = None
    description: str | None = None
    url: str | None = None
    image_src: str | None = None
    file_type: str | None = None
    content_type: str | None = None
    file_extension: str | None = None
    content: str = ""
    content_author: str | None = None
    content_language: str | None = None
    content_tags: list[str] = Field(default_factory=list)
    edx_module_id: str | None = None
    source_path: str | None = None
    archive_checksum: str | None = None
    youtube_id: str | None = None
    published: bool = True

    @property
    def checksum(self) -> str:
        return hashlib.md5(self.content.encode()).hexdigest()  # noqa: S324 - MIT Learn's content checksum


def natural_key(platform: Any, readable_id: str, resource_type: Any) -> str:
    """A resource's natural key as one string (`Resource.key`), from the model's values or its
    stored form's (the enums are str enums: both spell the same)."""
    return f"{platform}.{readable_id}.{resource_type}"


class Resource(_Model):
    """A learning resource: course, program, podcast, episode, video, playlist or document."""

    readable_id: str
    platform: str
    resource_type: ResourceType
    etl_source: str
    title: str
    offered_by: str | None = None
    description: str | None = None
    full_description: str | None = None
    url: str | None = None
    image: Image | None = None
    published: bool = True
    test_mode: bool = False
    last_modified: datetime | None = None
    languages: list[str] = Field(default_factory=list)
    departments: list[Department] = Field(default_factory=list)
    topics: list[Topic] = Field(default_factory=list)
    ocw_topics: list[str] = Field(default_factory=list)
    course_features: list[str] = Field(default_factory=list)
    certification: bool = False
    certification_type: CertificationType = CertificationType.none
    resource_category: str | None = None
    professional: bool = False
    license_cc: bool = False
    runs: list[Run] = Field(default_factory=list)
    prices: list[Price] = Field(default_factory=list)
    delivery: list[Delivery] = Field(default_factory=list)
    availability: Availability | None = None
    pace: list[Pace] = Field(default_factory=list)
    format: list[Format] = Field(default_factory=list)
    location: str | None = None
    duration: str | None = None
    time_commitment: str | None = None
    min_weeks: int | None = None
    max_weeks: int | None = None
    min_weekly_hours: int | None = None
    max_weekly_hours: int | None = None
    continuing_ed_credits: Decimal | None = None
    completeness: float = 1.0
    course_numbers: list[CourseNumber] = Field(default_factory=list)
    relationships: list[Relationship] = Field(default_factory=list)
    content_files: list[ContentFile] = Field(default_factory=list)
    # Type-specific fields (podcast rss urls, episode audio, video duration/transcript, ...).
    details: dict[str, Any] = Field(default_factory=dict)

    @property
    def ref(self) -> ResourceRef:
        return ResourceRef(
            platform=self.platform, readable_id=self.readable_id, resource_type=self.resource_type
        )

    @property
    def key(self) -> str:
        """The natural key as one string: also the vector point key (MIT Learn's `platform.readable_id`)."""
        return natural_key(self.platform, self.readable_id, self.resource_type)

    def stored_form(self) -> tuple[dict[str, Any], str, str]:
        """What the loader stores, from one dump: the JSON values, their canonical text (the
        `data` column) and its SHA-256 (equal digests mean nothing to rewrite)."""
        data = self.model_dump(mode="json", exclude={"content_files"})
        blob = canonical(data, finite=math.isfinite(data["completeness"]))  # its only float
        return data, blob.decode(), hashlib.sha256(blob).hexdigest()

    def content_hash(self) -> str:
        return self.stored_form()[2]

    @property
    def free(self) -> bool:
        """MIT Learn: courses/programs are free when not professional and a 0 price (or none) exists."""
        if self.resource_type not in (ResourceType.course, ResourceType.program):
            return True
        if self.professional:
            return False
        amounts = [p.amount for p in self.prices]
        return not amounts or any(a == 0 for a in amounts)

    @property
    def resource_type_group(self) -> str:
        if self.resource_type in (ResourceType.course, ResourceType.program):
            return str(self.resource_type)
        return "learning_material"


class FeedSource(_Model):
    title: str
    url: str
    feed_type: FeedType
    description: str | None = None
    image: Image | None = None


class FeedItem(_Model):
    """A news or event item (MIT Learn's news_events FeedItem with its detail)."""

    guid: str
    feed_type: FeedType
    source: FeedSource
    etl_source: str
    title: str
    url: str | None = None
    summary: str | None = None
    content: str | None = None
    image: Image | None = None
    # news
    authors: list[str] = Field(default_factory=list)
    topics: list[str] = Field(default_factory=list)
    publish_date: datetime | None = None
    # events
    audience: list[str] = Field(default_factory=list)
    location: list[str] = Field(default_factory=list)
    event_type: list[str] = Field(default_factory=list)
    event_datetime: datetime | None = None
    event_end_datetime: datetime | None = None

    def content_hash(self) -> str:
        return hashlib.sha256(canonical(self.model_dump(mode="json"))).hexdigest()


class Quarantined(_Model):
    """An item a transform could not read: kept with its reason so nothing is lost."""

    source: str
    item_key: str | None = None
    reason: str
    raw: str


class ViewEvent(_Model):
    """One PostHog `lrd_open` event: a learner viewed a resource (deduplicated by uuid)."""

    event_uuid: str
    resource_id: int
    event_date: datetime


class TransformOutput(_Model):
    """What a pure transform returns for one raw payload."""

    resources: list[Resource] = Field(default_factory=list)
    feed_items: list[FeedItem] = Field(default_factory=list)
    # Content files that belong to a resource by its url/key (marketing pages); archive content
    # files travel on their Resource.
    content_files: list[ContentFile] = Field(default_factory=list)
    view_events: list[ViewEvent] = Field(default_factory=list)
    quarantined: list[Quarantined] = Field(default_factory=list)
