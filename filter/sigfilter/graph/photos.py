"""Users' photos from Graph into the tenant's images/photos/ (optional per tenant).

Delta does not track photos, so they are checked on their own schedule (daily, and at
once for users new to the sync): the photo's metadata first (``@odata.mediaEtag``),
the bytes only when the ETag changed. Photos over the size cap are left out and
noted. Files are named by Graph id (no address in a public image URL) and written by
the caller, only when the whole run succeeded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .client import GraphClient

JPEG = b"\xff\xd8\xff"  # Graph serves profile photos as image/jpeg


@dataclass
class PhotoUpdate:
    etags: dict[str, str] = field(default_factory=dict)  # Graph id -> ETag, users with a photo
    fetched: dict[str, bytes] = field(default_factory=dict)  # new or changed photos
    checked: int = 0
    notes: list[str] = field(default_factory=list)


def photo_name(oid: str) -> str:
    """The image name templates use: ``{{ image(photo) }}`` with the ``photo`` field."""
    return f"photos/{oid}.jpg"


def refresh_photos(
    client: GraphClient, ids: Iterable[str], known: dict[str, str], size: str, cap: int
) -> PhotoUpdate:
    """Check each user's photo; fetch it when its ETag is not the one in ``known``."""
    out = PhotoUpdate()
    for oid in ids:
        out.checked += 1
        meta = client.get(f"/users/{oid}/photos/{size}", ok=frozenset({404}))
        if meta.status_code == 404:
            continue  # no photo (or none of this size)
        etag = str(meta.json().get("@odata.mediaEtag", ""))
        if etag and known.get(oid) == etag:
            out.etags[oid] = etag
            continue
        data = client.get_capped(f"/users/{oid}/photos/{size}/$value", cap)
        if data is None:
            out.notes.append(f"photo of user {oid} is over {cap} bytes (max_photo_bytes): left out")
            continue
        if not data.startswith(JPEG):
            out.notes.append(f"photo of user {oid} is not a JPEG image: left out")
            continue
        out.etags[oid] = etag
        out.fetched[oid] = data
    return out
