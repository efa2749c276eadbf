from .gdn import GDN, GDN1

__all__ = ["GDN", "GDN1"]
