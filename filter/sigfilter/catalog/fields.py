"""The directory fields a user can carry, with the names templates use.

Imports from the Microsoft 365 admin centre CSV and from Microsoft Graph map onto
these names; ``users.csv`` in a tenant folder has one column per field (any subset,
``email`` required), and templates use them as ``{{ job_title }}``.
"""

from __future__ import annotations

FIELDS: dict[str, str] = {
    "email": "primary SMTP address (the key; lower-cased)",
    "display_name": "full name as shown",
    "given_name": "first name",
    "surname": "last name",
    "job_title": "job title",
    "department": "department",
    "company": "company name",
    "office": "office location",
    "phone": "business phone",
    "mobile": "mobile phone",
    "fax": "fax number",
    "street": "street address",
    "city": "city",
    "state": "state or province",
    "postal_code": "ZIP or postal code",
    "country": "country or region",
    "groups": "groups the user belongs to, separated by ';'",
    "upn": "user principal name (sign-in name)",
    "photo": "the user's photo, an image name for {{ image(photo) }} (users sync, photos = true)",
}
FIELD_NAMES: tuple[str, ...] = tuple(FIELDS)
