"""Runs the locators, deduplicates and layers what they found, and caches the result by mtimes.

An unchanged tree is answered after one ``stat`` per directory that matters (roots, and a few per
env); a new, deleted or changed env shows on the very next call. Nothing here runs a process.

- :mod:`.cache`: one scan's ``stat``/listing cache, mtime signatures, the per-path memo
- :mod:`.scan`: which children of a directory are envs, one prefix's facts
- :mod:`.build`: candidates -> protos (kinds, bases, names), incrementally
- :mod:`.naming`: names, display chains, stable ids, the Environment of each proto
- :mod:`.core`: :class:`Discovery`, which runs them and decides what to read again
"""

from .cache import RACY_WINDOW_NS, fs_now_ns, mtime_signature, settled_since, signature_unchanged
from .config import DiscoveryConfig
from .core import Discovery
from .naming import layer_id, slug
from .scan import env_children

# what the kernel spec manager, the service and the tests use; the steps' own types stay in their modules
__all__ = [
    "RACY_WINDOW_NS",
    "Discovery",
    "DiscoveryConfig",
    "env_children",
    "fs_now_ns",
    "layer_id",
    "mtime_signature",
    "settled_since",
    "signature_unchanged",
    "slug",
]
