"""Seeded synthetic data: a product catalogue, users, an interactions history in Personalize's
import format, and a stream of Segment e-commerce v2 messages as the Kinesis destination
delivers them. The same seed gives the same output, byte for byte.

CLI: ``python -m emulators.data --seed 1 --out DIR`` writes catalogue.json, interactions.csv
and events.jsonl.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Personalize's interactions dataset uses these Segment event names as EVENT_TYPE.
VIEWED, CLICKED, ADDED, ORDERED = (
    "Product Viewed",
    "Product Clicked",
    "Product Added",
    ("Order Completed"),
)
EVENT_TYPES = (VIEWED, CLICKED, ADDED, ORDERED)
CSV_HEADER = ("USER_ID", "ITEM_ID", "EVENT_TYPE", "TIMESTAMP")

# History starts here (UTC); Segment events continue after it.
HISTORY_START = datetime(2024, 1, 1, tzinfo=UTC)
HISTORY_DAYS = 90
STREAM_START = HISTORY_START + timedelta(days=HISTORY_DAYS)

# category -> (adjectives, nouns, price range): names like "Trail Runner", "Copper Kettle".
_CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[float, float]]] = {
    "Footwear": (
        ("Trail", "Road", "Canvas", "Leather", "Court"),
        ("Runner", "Sneaker", "Boot", "Loafer", "Sandal"),
        (35, 180),
    ),
    "Outdoor": (
        ("Alpine", "Summit", "Ridge", "Canyon", "Forest"),
        ("Tent", "Backpack", "Sleeping Bag", "Headlamp", "Trekking Pole"),
        (15, 450),
    ),
    "Kitchen": (
        ("Cast-Iron", "Copper", "Ceramic", "Steel", "Bamboo"),
        ("Skillet", "Kettle", "Knife Set", "Cutting Board", "Mixing Bowl"),
        (12, 220),
    ),
    "Electronics": (
        ("Wireless", "Compact", "Smart", "Portable", "Pro"),
        ("Headphones", "Speaker", "Charger", "Camera", "Keyboard"),
        (19, 600),
    ),
    "Books": (
        ("Illustrated", "Pocket", "Collected", "Annotated", "Complete"),
        ("Cookbook", "Atlas", "Field Guide", "Novel", "Poetry"),
        (8, 60),
    ),
    "Toys": (
        ("Wooden", "Magnetic", "Giant", "Mini", "Glow"),
        ("Puzzle", "Train Set", "Building Blocks", "Kite", "Board Game"),
        (9, 120),
    ),
    "Beauty": (
        ("Herbal", "Citrus", "Lavender", "Rose", "Mineral"),
        ("Face Cream", "Shampoo", "Soap", "Lip Balm", "Serum"),
        (5, 90),
    ),
    "Garden": (
        ("Heirloom", "Galvanised", "Folding", "Solar", "Cedar"),
        ("Planter", "Watering Can", "Pruner", "Lantern", "Seed Kit"),
        (6, 150),
    ),
}

_COLOURS = ("Black", "White", "Navy", "Olive", "Sand", "Red", "Grey", "Teal")
_PAGES = ("Home", "Search", "Category", "Cart", "Help", "Account")
_EVENT_WEIGHTS = ((VIEWED, 0.58), (CLICKED, 0.22), (ADDED, 0.12), (ORDERED, 0.08))


def catalogue(seed: int, n_items: int = 120) -> list[dict[str, Any]]:
    """``n_items`` products (the emulators expect ≈50–200) with sku, product_id, name,
    category and price. SKUs are the Personalize item ids by default."""
    if n_items < 1:
        raise ValueError("n_items must be >= 1")
    rng = random.Random(f"catalogue:{seed}")
    categories = list(_CATEGORIES)
    products: list[dict[str, Any]] = []
    names: set[str] = set()
    for index in range(n_items):
        category = categories[index % len(categories)]
        adjectives, nouns, (low, high) = _CATEGORIES[category]
        name = f"{rng.choice(adjectives)} {rng.choice(nouns)}"
        if name in names:
            name = f"{name} ({rng.choice(_COLOURS)})"
        while name in names:
            name = f"{name} {len(names)}"
        names.add(name)
        products.append(
            {
                "sku": f"SKU-{index + 1:04d}",
                "product_id": f"prod_{rng.getrandbits(40):010x}",
                "name": name,
                "category": category,
                "price": round(rng.uniform(low, high), 2),
            }
        )
    return products


def users(seed: int, n_users: int = 200) -> list[str]:
    """``n_users`` user ids: ``user-0001``... (plain, URL-safe ids; tests add odd ones)."""
    if n_users < 1:
        raise ValueError("n_users must be >= 1")
    return [f"user-{index + 1:04d}" for index in range(n_users)]


def _preferences(
    rng: random.Random, products: Sequence[dict[str, Any]], people: Sequence[str]
) -> dict[str, list[str]]:
    """Each user favours one or two categories: that is what the recommender can learn."""
    categories = sorted({p["category"] for p in products})
    return {u: rng.sample(categories, k=min(len(categories), rng.choice((1, 2)))) for u in people}


def interactions(
    seed: int,
    catalogue: Sequence[dict[str, Any]],
    users: Sequence[str],
    n: int = 5000,
) -> list[tuple[str, str, str, int]]:
    """``n`` rows ``(user_id, item_id (= sku), event_type, timestamp)`` sorted by time.

    Users mostly interact within their favourite categories; event types follow a funnel
    (views ≫ clicks > adds > orders). Timestamps are epoch seconds within HISTORY_DAYS.
    """
    if not catalogue or not users:
        raise ValueError("catalogue and users must not be empty")
    rng = random.Random(f"interactions:{seed}")
    prefs = _preferences(rng, catalogue, users)
    by_category: dict[str, list[str]] = {}
    for product in catalogue:
        by_category.setdefault(product["category"], []).append(str(product["sku"]))
    all_items = [str(p["sku"]) for p in catalogue]
    event_names = [name for name, _ in _EVENT_WEIGHTS]
    event_weights = [weight for _, weight in _EVENT_WEIGHTS]
    start = int(HISTORY_START.timestamp())
    span = HISTORY_DAYS * 86400
    rows: list[tuple[str, str, str, int]] = []
    for _ in range(n):
        user = rng.choice(users)
        if rng.random() < 0.85:
            item = rng.choice(by_category[rng.choice(prefs[user])])
        else:
            item = rng.choice(all_items)
        event = rng.choices(event_names, weights=event_weights)[0]
        rows.append((user, item, event, start + rng.randrange(span)))
    rows.sort(key=lambda row: (row[3], row[0], row[1]))
    return rows


def write_interactions_csv(path: str | Path, rows: Iterable[Sequence[Any]]) -> Path:
    """Write rows in Personalize's bulk-import format (USER_ID,ITEM_ID,EVENT_TYPE,TIMESTAMP)."""
    target = Path(path)
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        for row in rows:
            writer.writerow(row)
    return target


def read_interactions_csv(path: str | Path) -> list[tuple[str, str, str, int]]:
    """Read a Personalize interactions CSV (extra columns ignored, header names any case)."""
    rows: list[tuple[str, str, str, int]] = []
    with Path(path).open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        for record in reader:
            fields = {k.strip().upper(): (v or "").strip() for k, v in record.items() if k}
            rows.append(
                (
                    fields["USER_ID"],
                    fields["ITEM_ID"],
                    fields.get("EVENT_TYPE") or VIEWED,
                    int(float(fields.get("TIMESTAMP") or 0)),
                )
            )
    return rows


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _MessageFactory:
    """Builds full Segment messages with the delivery metadata the Kinesis destination adds."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def message(
        self,
        kind: str,
        moment: datetime,
        user_id: str | None,
        anonymous_id: str,
        **fields: Any,
    ) -> dict[str, Any]:
        sent = moment + timedelta(milliseconds=self.rng.randrange(5, 400))
        received = sent + timedelta(milliseconds=self.rng.randrange(10, 300))
        message: dict[str, Any] = {
            "anonymousId": anonymous_id,
            "channel": "server",
            "context": {
                "ip": f"203.0.113.{self.rng.randrange(1, 255)}",
                "library": {"name": "analytics-python", "version": "2.3.2"},
                "locale": "en-US",
                "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
            },
            "integrations": {},
            "messageId": f"api-{self.uuid()}",
            "originalTimestamp": _iso(moment),
            "receivedAt": _iso(received),
            "sentAt": _iso(sent),
            # timestamp = receivedAt - (sentAt - originalTimestamp), as Segment computes it
            "timestamp": _iso(received - (sent - moment)),
            "type": kind,
            "version": 2,
        }
        if user_id is not None:
            message["userId"] = user_id
        message.update(fields)
        return message


def segment_events(
    seed: int,
    catalogue: Sequence[dict[str, Any]],
    users: Sequence[str],
    n: int = 1000,
) -> Iterator[dict[str, Any]]:
    """Yield ``n`` Segment messages in time order, grouped in browsing sessions.

    Tracks Product Viewed / Clicked / Added (flat ``properties.sku`` and ``product_id``) and
    Order Completed (``properties.products[]``), with page and identify noise. About a third
    of sessions start anonymous and identify part-way (same anonymousId, then userId).
    """
    if not catalogue or not users:
        raise ValueError("catalogue and users must not be empty")
    rng = random.Random(f"segment:{seed}")
    factory = _MessageFactory(rng)
    prefs = _preferences(random.Random(f"interactions:{seed}"), catalogue, users)
    by_category: dict[str, list[dict[str, Any]]] = {}
    for product in catalogue:
        by_category.setdefault(product["category"], []).append(product)
    moment = STREAM_START
    produced = 0
    while produced < n:
        user = rng.choice(users)
        anonymous_id = factory.uuid()
        identified_at = rng.randrange(1, 6) if rng.random() < 0.33 else 0
        cart: list[dict[str, Any]] = []
        for step in range(rng.randrange(3, 12)):
            if produced >= n:
                return
            moment += timedelta(seconds=rng.randrange(2, 90))
            known = step >= identified_at
            user_id = user if known else None
            if identified_at and step == identified_at:
                yield factory.message(
                    "identify",
                    moment,
                    user,
                    anonymous_id,
                    traits={
                        "email_opt_in": rng.random() < 0.5,
                        "plan": rng.choice(("free", "plus")),
                    },
                )
                produced += 1
                continue
            roll = rng.random()
            if roll < 0.15:
                page = rng.choice(_PAGES)
                yield factory.message(
                    "page",
                    moment,
                    user_id,
                    anonymous_id,
                    name=page,
                    properties={"path": f"/{page.lower()}", "title": page},
                )
            elif roll < 0.2 and known:
                yield factory.message(
                    "identify", moment, user, anonymous_id, traits={"last_seen_page": "Home"}
                )
            elif cart and roll > 0.9:
                order = _order(rng, cart)
                cart = []
                yield factory.message(
                    "track", moment, user_id, anonymous_id, event=ORDERED, properties=order
                )
            else:
                category = (
                    rng.choice(prefs[user])
                    if rng.random() < 0.85
                    else rng.choice(sorted(by_category))
                )
                product = rng.choice(by_category[category])
                event = rng.choices((VIEWED, CLICKED, ADDED), weights=(0.6, 0.25, 0.15))[0]
                if event == ADDED:
                    cart.append(product)
                yield factory.message(
                    "track",
                    moment,
                    user_id,
                    anonymous_id,
                    event=event,
                    properties=_product_properties(product),
                )
            produced += 1


def _product_properties(product: dict[str, Any]) -> dict[str, Any]:
    return {
        "product_id": product["product_id"],
        "sku": product["sku"],
        "name": product["name"],
        "category": product["category"],
        "price": product["price"],
        "currency": "USD",
    }


def _order(rng: random.Random, cart: list[dict[str, Any]]) -> dict[str, Any]:
    lines = []
    for product in cart:
        line = _product_properties(product)
        del line["currency"]
        line["quantity"] = rng.randrange(1, 3)
        lines.append(line)
    revenue = round(sum(line["price"] * line["quantity"] for line in lines), 2)
    return {
        "order_id": f"order-{rng.getrandbits(32):08x}",
        "revenue": revenue,
        "total": revenue,
        "currency": "USD",
        "products": lines,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.data",
        description="Write a seeded sample catalogue, interactions history and Segment events.",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--items", type=int, default=120, help="catalogue size (default 120)")
    parser.add_argument("--users", type=int, default=200, help="number of users (default 200)")
    parser.add_argument(
        "--interactions", type=int, default=5000, help="history rows (default 5000)"
    )
    parser.add_argument("--events", type=int, default=1000, help="Segment messages (default 1000)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    products = catalogue(args.seed, args.items)
    people = users(args.seed, args.users)
    (args.out / "catalogue.json").write_text(json.dumps(products, indent=2) + "\n")
    write_interactions_csv(
        args.out / "interactions.csv", interactions(args.seed, products, people, args.interactions)
    )
    with (args.out / "events.jsonl").open("w", encoding="utf-8") as handle:
        for message in segment_events(args.seed, products, people, args.events):
            handle.write(json.dumps(message, sort_keys=True) + "\n")
    print(f"wrote {args.out}/catalogue.json, interactions.csv, events.jsonl")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
