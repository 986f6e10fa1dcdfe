"""The OBSERVABILITY rows of the layer at volume: sampling, per-line levels, flood
control, metrics, and the reuse check's shared memory (README, "Running at volume")."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from observability.conf_checks import (
    MAX_SEEN_IDS_PER_CLIENT,
    MAX_SEEN_IDS_WINDOW,
    MIN_TOKEN_LENGTH,
    Row,
    is_bool,
    is_count,
    is_logger_name,
    is_number,
    is_prefix,
    is_str_seq,
    known_cache,
    valid_networks,
    valid_patterns,
    valid_token,
)

LEVEL_NAMES = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: Levels a success's lifecycle line may have (above WARNING it would fill the errors file).
LINE_LEVELS = ("DEBUG", "INFO", "WARNING")
_BOOL = "must be True or False"


def _networks(value: Any) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in value)


def _patterns(value: Any) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(pattern) for pattern in value)


VOLUME_ROWS: tuple[Row, ...] = (
    # --- Volume: sampling, per-line levels, flood control, metrics (README, "Running at volume")
    Row(
        "SAMPLE_RATE",
        1.0,
        lambda v: is_number(v) and 0.0 <= v <= 1.0,
        "must be a fraction of fast successful requests from 0.0 to 1.0",
    ),
    Row(
        "STARTED_LEVEL",
        "INFO",
        lambda v: v is None or v in LINE_LEVELS,
        "must be 'DEBUG', 'INFO', 'WARNING', or None for no started line",
    ),
    Row(
        "COMPLETED_LEVEL",
        "INFO",
        lambda v: v in LINE_LEVELS,
        "must be 'DEBUG', 'INFO' or 'WARNING'",
    ),
    Row(
        "SLOW_REQUEST_LEVEL",
        "WARNING",
        lambda v: v in LEVEL_NAMES,
        f"must be one of {', '.join(map(repr, LEVEL_NAMES))}",
    ),
    Row(
        "EXCLUDE_PATTERNS",
        (),
        valid_patterns,
        "must be a list of regular expressions that compile",
        read=_patterns,  # compiled once per settings, matched with search()
    ),
    Row(
        "FLOOD_LIMIT",
        10,
        is_count,
        "must be a number of records per window >= 0 (0 turns flood control off)",
    ),
    Row(
        "FLOOD_WINDOW",
        60.0,
        lambda v: is_number(v) and 0 < v <= 86400,
        "must be a number of seconds > 0 and <= 86400",
    ),
    Row(
        "FLOOD_LOGGERS",
        (),
        lambda v: is_str_seq(v) and all(is_logger_name(name) for name in v),
        "must be a list of logger names such as 'myapp.payments'",
        read=tuple,
    ),
    # One client for flood control: an IPv4 address, an IPv6 /64 (a whole /64 is one client).
    Row(
        "FLOOD_IPV4_PREFIX",
        32,
        lambda v: is_prefix(v, 8, 32),
        "must be a prefix length from 8 to 32: the IPv4 network flood control counts as one "
        "client (32: each address)",
    ),
    Row(
        "FLOOD_IPV6_PREFIX",
        64,
        lambda v: is_prefix(v, 16, 128),
        "must be a prefix length from 16 to 128: the IPv6 network flood control counts as one "
        "client (64: each /64)",
    ),
    Row(
        "FLOOD_IPV4_NETWORK_PREFIX",
        24,
        lambda v: is_prefix(v, 8, 32),
        "must be a prefix length from 8 to 32: the IPv4 network whose clients share "
        "FLOOD_NETWORK_LIMIT (24: each /24)",
    ),
    Row(
        "FLOOD_IPV6_NETWORK_PREFIX",
        64,
        lambda v: is_prefix(v, 16, 128),
        "must be a prefix length from 16 to 128: the IPv6 network whose clients share "
        "FLOOD_NETWORK_LIMIT (64: each /64)",
    ),
    Row(
        "FLOOD_NETWORK_LIMIT",
        100,
        lambda v: is_prefix(v, 0, 10**9),
        "must be a whole number of security lines per network and window >= 0 (0: no limit "
        "per network)",
    ),
    Row(
        "FLOOD_GLOBAL_LIMIT",
        300,
        lambda v: is_prefix(v, 0, 10**9),
        "must be a whole number of guarded lines per window over every client >= 0 (0: no "
        "global limit)",
    ),
    Row(
        "FLOOD_CACHE",
        None,
        known_cache,
        "must be the alias of a cache in CACHES that every worker shares, or None to count "
        "the network and global budgets in each process",
    ),
    Row("METRICS", True, is_bool, _BOOL),
    Row(
        "METRICS_ALLOWED_IPS",
        ("127.0.0.0/8", "::1"),
        valid_networks,
        "must be a list of client addresses or networks such as '10.0.0.0/8'",
        read=_networks,
    ),
    Row(
        "METRICS_TOKEN",
        None,
        valid_token,
        f"must be None or a token of at least {MIN_TOKEN_LENGTH} printable characters "
        "without spaces",
        secret=True,
    ),
    # --- Reused request IDs: the memory every worker shares (README, "Security of the logs")
    Row(
        "SEEN_IDS_CACHE",
        "default",
        known_cache,
        "must be the alias of a cache in CACHES that every worker shares, "
        "or None for no reuse check of incoming request IDs",
    ),
    Row(
        "SEEN_IDS_WINDOW",
        3600.0,
        lambda v: is_number(v) and 0 < v <= MAX_SEEN_IDS_WINDOW,
        f"must be a number of seconds > 0 and <= {MAX_SEEN_IDS_WINDOW} (a week)",
    ),
    Row(
        "SEEN_IDS_PER_CLIENT",
        1000,
        lambda v: v is None or is_prefix(v, 1, MAX_SEEN_IDS_PER_CLIENT),
        f"must be a whole number >= 1 and <= {MAX_SEEN_IDS_PER_CLIENT} (IDs one client may "
        "have remembered per window), or None for no quota",
    ),
    Row(
        "SEEN_IDS_QUOTA_CACHE",
        None,
        known_cache,
        "must be the alias of a cache in CACHES that every worker shares, "
        "or None to count in SEEN_IDS_CACHE",
    ),
)
