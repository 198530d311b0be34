"""Procedural scenes for SpeechCLIP's embedded benchmark: a few coloured shapes on a background, and captions.

A scene is drawn from `(seed, index)` alone: a background (plain, two-tone gradient or stripes, in a colour), one
to three objects, each a shape in a colour and a size at a position, none overlapping much. Its five captions come
from a small grammar over what was drawn — the objects' colour, size and shape, where they are, how they relate
(left of / right of / above / below) and the background — so every caption is true of its image and the five
differ. What a caption can say is what a picture shows, as Flickr8k's captions describe their photos.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHAPES = ("circle", "square", "triangle", "diamond", "star", "cross")
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 210, 40),
    "purple": (140, 60, 180),
    "orange": (245, 140, 30),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
BACKGROUNDS = ("plain", "gradient", "striped")
SIZES = {"small": 0.14, "large": 0.26}  # radius as a share of the image side


@dataclass(frozen=True)
class SceneObject:
    shape: str
    colour: str
    size: str
    x: float  # centre, 0 (left) … 1 (right)
    y: float  # centre, 0 (top) … 1 (bottom)

    def noun(self, with_size: bool = True) -> str:
        return " ".join([*([self.size] if with_size else []), self.colour, self.shape])

    @property
    def region(self) -> str:
        horizontal = "left" if self.x < 0.38 else "right" if self.x > 0.62 else ""
        vertical = "top" if self.y < 0.38 else "bottom" if self.y > 0.62 else ""
        if horizontal and vertical:
            return f"{vertical} {horizontal}"
        return horizontal or vertical or "middle"

    @property
    def where(self) -> str:
        """The region with its preposition: "in the top left", "on the left", "at the bottom", "in the middle"."""
        region = self.region
        if region in ("left", "right"):
            return f"on the {region}"
        if region in ("top", "bottom"):
            return f"at the {region}"
        return f"in the {region}"


@dataclass(frozen=True)
class Scene:
    background: str
    background_colour: str
    objects: tuple[SceneObject, ...]


def sample_scene(seed: int, index: int) -> Scene:
    """The scene of image `index` (deterministic in `(seed, index)`)."""
    rng = np.random.default_rng([seed, index, 7])
    colours = list(COLOURS)
    background_colour = colours[rng.integers(len(colours))]
    objects: list[SceneObject] = []
    wanted = int(rng.integers(1, 4))
    for _ in range(40):  # rejection sampling: objects keep apart so each stays visible and nameable
        if len(objects) == wanted:
            break
        size = ("small", "large")[rng.integers(2)]
        radius = SIZES[size]
        x, y = (float(v) for v in rng.uniform(radius, 1 - radius, size=2))
        if any(np.hypot(x - o.x, y - o.y) < radius + SIZES[o.size] + 0.04 for o in objects):
            continue
        colour = [c for c in colours if c != background_colour][rng.integers(len(colours) - 1)]
        shape = SHAPES[rng.integers(len(SHAPES))]
        if any((o.shape, o.colour) == (shape, colour) for o in objects):
            continue  # two alike objects could not be told apart by a caption
        objects.append(SceneObject(shape, colour, size, round(x, 3), round(y, 3)))
    return Scene(BACKGROUNDS[rng.integers(len(BACKGROUNDS))], background_colour, tuple(objects))


def _polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    def ring(points: int, radii: tuple[float, ...], start: float) -> list[tuple[float, float]]:
        angles = start + np.arange(points) * 2 * np.pi / points
        return [(cx + radii[i % len(radii)] * np.cos(a), cy + radii[i % len(radii)] * np.sin(a))
                for i, a in enumerate(angles)]  # fmt: skip

    if shape == "triangle":
        return ring(3, (r,), -np.pi / 2)
    if shape == "diamond":
        return ring(4, (r,), -np.pi / 2)
    if shape == "star":
        return ring(10, (r, 0.45 * r), -np.pi / 2)
    if shape == "cross":
        a, b = r, r / 3
        return [(cx - b, cy - a), (cx + b, cy - a), (cx + b, cy - b), (cx + a, cy - b), (cx + a, cy + b),
                (cx + b, cy + b), (cx + b, cy + a), (cx - b, cy + a), (cx - b, cy + b), (cx - a, cy + b),
                (cx - a, cy - b), (cx - b, cy - b)]  # fmt: skip
    raise ValueError(f"unknown shape {shape!r}")


def draw_scene(scene: Scene, size: int = 64):
    """The scene as a `size` × `size` RGB PIL image."""
    from PIL import Image, ImageDraw

    base = np.array(COLOURS[scene.background_colour], dtype=np.float32)
    canvas = np.empty((size, size, 3), dtype=np.float32)
    canvas[:] = base
    tint = 0.6 * base + 0.4 * 255  # the colour mixed with white: visible on black as on any colour
    if scene.background == "gradient":
        mix = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
        canvas[:] = (1 - mix) * base + mix * tint
    elif scene.background == "striped":
        stripes = (np.arange(size) // max(2, size // 8)) % 2 == 1
        canvas[stripes] = tint
    image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for obj in scene.objects:
        cx, cy, r = obj.x * size, obj.y * size, SIZES[obj.size] * size
        fill = COLOURS[obj.colour]
        if obj.shape == "circle":
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
        elif obj.shape == "square":
            s = r * 0.85
            draw.rectangle((cx - s, cy - s, cx + s, cy + s), fill=fill)
        else:
            draw.polygon(_polygon(obj.shape, cx, cy, r), fill=fill)
    return image


def _relation(a: SceneObject, b: SceneObject) -> str:
    dx, dy = b.x - a.x, b.y - a.y
    if abs(dx) >= abs(dy):
        return "to the left of" if dx > 0 else "to the right of"
    return "above" if dy > 0 else "below"


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def caption_pool(scene: Scene) -> list[str]:
    """Every caption the grammar can say of `scene` (each true of it)."""
    objs = scene.objects
    background = f"{scene.background_colour} background" if scene.background == "plain" else (
        f"{scene.background} {scene.background_colour} background")  # fmt: skip
    pool = []
    for obj in objs:
        pool += [
            f"{_article(obj.noun())} on {_article(background)}",
            f"there is {_article(obj.noun(False))} {obj.where}",
            f"{_article(obj.noun())} {obj.where} of the picture",
            f"the {obj.shape} is {obj.colour}",
        ]
    for i, a in enumerate(objs):
        for b in objs[i + 1 :]:
            pool.append(f"{_article(a.noun(False))} {_relation(a, b)} {_article(b.noun(False))}")
            pool.append(f"{_article(b.noun())} {_relation(b, a)} {_article(a.noun())}")
    if len(objs) > 1:
        listed = ", ".join(_article(o.noun(False)) for o in objs[:-1]) + f" and {_article(objs[-1].noun(False))}"
        counts = {2: "two", 3: "three"}
        pool += [f"{counts[len(objs)]} shapes: {listed}", f"{listed} on {_article(background)}"]
    else:
        pool += [f"a single {objs[0].colour} {objs[0].shape}", f"one {objs[0].noun()} and nothing else"]
    return list(dict.fromkeys(pool))  # one wording twice (two objects of one shape) counts once


def scene_captions(scene: Scene, seed: int, index: int, count: int = 5) -> list[str]:
    """`count` different captions of `scene`, drawn from `caption_pool` (deterministic in `(seed, index)`)."""
    pool = caption_pool(scene)
    rng = np.random.default_rng([seed, index, 11])
    order = rng.permutation(len(pool))
    picked = [pool[i] for i in order[:count]]
    while len(picked) < count:  # a scene with few things to say repeats its captions in other voices
        picked.append(pool[order[len(picked) % len(pool)]])
    return picked
