"""The catalog: the directory admins keep in git, and what is compiled from it."""

from .compiled import Resolution, TenantRecord, UserRecord, compile_catalog, resolve
from .load import CatalogError, load_catalog
from .model import Catalog, Tenant
from .render import Renderer, RenderError

__all__ = [
    "Catalog",
    "CatalogError",
    "RenderError",
    "Renderer",
    "Resolution",
    "Tenant",
    "TenantRecord",
    "UserRecord",
    "compile_catalog",
    "load_catalog",
    "resolve",
]
