#!/usr/bin/env python3
"""Regenerate the PNG artwork for the Tessera storeCard template.

Usage:  python3 templates/tools/make_images.py

Writes (relative to the templates/ directory):
  default/images/icon{,@2x,@3x}.png    29x29 pt   opaque mosaic "T" emblem
  default/images/logo{,@2x,@3x}.png    160x50 pt  emblem + "Tessera", white on transparent
  default/images/strip{,@2x,@3x}.png   375x123 pt neutral teal mosaic strip
  default/tiers/<tier>/strip{,@2x,@3x}.png  for silver, gold, platinum

Everything is deterministic: geometry is defined in points and scaled per
density, randomness is seeded per tier, and every density is rendered at its
own resolution (supersampled, then downsampled) rather than upscaled.
Requires Pillow and a DejaVu Sans Bold TrueType font (fonts-dejavu-core).
"""

import os
import random
import sys

from PIL import Image, ImageDraw, ImageFont

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = os.path.dirname(HERE)
DEFAULT = os.path.join(TEMPLATES, "default")
IMAGES = os.path.join(DEFAULT, "images")
TIERS = os.path.join(DEFAULT, "tiers")

DENSITIES = ((1, ""), (2, "@2x"), (3, "@3x"))
SS = 4  # supersampling factor for anti-aliased shapes
STRIP_COLORS = 128  # palette size for strips (64 shows stray tile colours)
MARK_COLORS = 64    # palette size for icon and logo

ICON_PT = (29, 29)
LOGO_PT = (160, 50)
STRIP_PT = (375, 123)

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
)

# Which cells of the 3x3 emblem are "light": they spell a T (for Tessera).
T_CELLS = {(0, 0), (1, 0), (2, 0), (1, 1), (1, 2)}

# Strip palettes: (dark end on the left, light end on the right, sheen strength)
PALETTES = {
    "default": ((20, 90, 100), (60, 150, 150), 0.10),
    "silver": ((120, 128, 140), (200, 205, 212), 0.10),
    "gold": ((150, 110, 30), (230, 190, 90), 0.12),
    "platinum": ((40, 44, 60), (150, 160, 185), 0.28),
}
SEEDS = {"default": 1001, "silver": 2002, "gold": 3003, "platinum": 4004}


def find_font():
    for path in FONT_CANDIDATES:
        if os.path.exists(path):
            return path
    sys.exit("DejaVuSans-Bold.ttf not found: apt-get install -y fonts-dejavu-core")


def save_png(img, path, colors=None):
    """Save optimized; quantize to a palette when `colors` is given."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if colors:
        if img.mode == "RGBA":
            img = img.quantize(colors=colors, method=Image.Quantize.FASTOCTREE,
                               dither=Image.Dither.NONE)
            # Octree buckets alpha; snap near-opaque/near-clear back to 255/0.
            pal = img.getpalette(rawmode="RGBA")
            for i in range(3, len(pal), 4):
                pal[i] = 255 if pal[i] >= 248 else (0 if pal[i] <= 4 else pal[i])
            img.putpalette(pal, rawmode="RGBA")
        else:
            img = img.quantize(colors=colors, method=Image.Quantize.MEDIANCUT,
                               dither=Image.Dither.NONE)
    img.save(path, "PNG", optimize=True)


def lerp(a, b, t):
    return a + (b - a) * t


def mix(c1, c2, t):
    return tuple(int(round(lerp(x, y, t))) for x, y in zip(c1, c2))


def scale_rgb(c, f):
    return tuple(max(0, min(255, int(round(v * f)))) for v in c)


# --------------------------------------------------------------------------
# Emblem (shared by icon and logo)
# --------------------------------------------------------------------------

def draw_emblem(draw, x0, y0, size, light, dark, gap_frac=0.12, radius_frac=0.22):
    """3x3 grid of rounded tiles inside a size x size box (pixel units)."""
    gap = size * gap_frac
    tile = (size - 2 * gap) / 3.0
    r = tile * radius_frac
    for row in range(3):
        for col in range(3):
            x = x0 + col * (tile + gap)
            y = y0 + row * (tile + gap)
            fill = light if (col, row) in T_CELLS else dark
            draw.rounded_rectangle((x, y, x + tile, y + tile), radius=r, fill=fill)


def make_icon(scale):
    w, h = ICON_PT[0] * scale * SS, ICON_PT[1] * scale * SS
    img = Image.new("RGB", (w, h), (16, 46, 54))
    d = ImageDraw.Draw(img)
    # Emblem occupies ~76% of the icon so it stays legible at 29 px.
    size = w * 0.76
    off = (w - size) / 2.0
    draw_emblem(d, off, off, size, light=(236, 246, 244), dark=(46, 150, 148),
                gap_frac=0.11, radius_frac=0.20)
    return img.resize((ICON_PT[0] * scale, ICON_PT[1] * scale), Image.LANCZOS)


def make_logo(scale, font_path):
    W, H = LOGO_PT[0] * scale, LOGO_PT[1] * scale
    # Emblem: supersampled, then reduced to this density.
    em_pt = 26.0
    em_px = int(round(em_pt * scale))
    em = Image.new("RGBA", (em_px * SS, em_px * SS), (255, 255, 255, 0))
    draw_emblem(ImageDraw.Draw(em), 0, 0, em_px * SS,
                light=(255, 255, 255, 255), dark=(255, 255, 255, 110),
                gap_frac=0.12, radius_frac=0.22)
    em = em.resize((em_px, em_px), Image.LANCZOS)

    img = Image.new("RGBA", (W, H), (255, 255, 255, 0))
    ex = int(round(2 * scale))
    ey = (H - em_px) // 2
    img.alpha_composite(em, (ex, ey))

    # Wordmark rendered directly at this density's pixel size.
    font = ImageFont.truetype(font_path, size=int(round(25 * scale)))
    d = ImageDraw.Draw(img)
    cap = font.getbbox("T", anchor="ls")  # (l, top, r, bottom) relative to baseline
    cap_h = -cap[1]
    baseline = H / 2.0 + cap_h / 2.0
    tx = ex + em_px + 9 * scale
    d.text((tx, baseline), "Tessera", font=font, fill=(255, 255, 255, 255), anchor="ls")
    bbox = d.textbbox((tx, baseline), "Tessera", font=font, anchor="ls")
    if bbox[2] > W:
        sys.exit("logo wordmark does not fit: %r > %d" % (bbox, W))
    return img


# --------------------------------------------------------------------------
# Strips
# --------------------------------------------------------------------------

def strip_layout(seed):
    """Tile geometry in points + per-tile random values; density independent."""
    rnd = random.Random(seed)
    pw, ph = STRIP_PT
    tile = 20.5          # tile pitch in points
    rows = int(ph // tile) + 2
    cols = int(pw // tile) + 3
    y_off = (ph - (rows - 1) * tile) / 2.0 - tile / 2.0
    tiles = []
    for r in range(rows):
        # Alternate rows are offset by half a tile (opus tessellatum).
        x_off = -tile / 2.0 if r % 2 else -tile
        for c in range(cols):
            x = x_off + c * tile
            y = y_off + r * tile
            jx = rnd.uniform(-0.6, 0.6)
            jy = rnd.uniform(-0.6, 0.6)
            shade = rnd.uniform(-1.0, 1.0)
            tiles.append((x + jx, y + jy, tile, shade))
    return tiles


def strip_color(palette, u, v):
    """Base colour at normalized position (u across, v down)."""
    dark, light, sheen = palette
    # Ease-in ramp: stays dark across the left ~45% where the balance sits.
    t = u ** 1.7
    c = mix(dark, light, t)
    # Extra shade on the far left so large white text keeps its contrast.
    c = scale_rgb(c, 0.86 + 0.14 * min(1.0, u / 0.55))
    # Soft diagonal sheen toward the right.
    s = max(0.0, 1.0 - abs((u - 0.78) + (v - 0.5) * 0.35) / 0.22)
    s = s * s * (3 - 2 * s) * sheen
    c = mix(c, (255, 255, 255), s)
    # Gentle top/bottom falloff (evaluated per tile, so tiles stay flat).
    e = min(1.0, min(v, 1.0 - v) / 0.2)
    return scale_rgb(c, 0.93 + 0.07 * e)


def make_strip(tier, scale):
    palette = PALETTES[tier]
    pw, ph = STRIP_PT
    k = scale * SS  # points -> supersampled pixels
    W, H = pw * k, ph * k
    img = Image.new("RGB", (W, H))
    d = ImageDraw.Draw(img)

    # Grout: a darker version of the gradient, continuous left to right
    # (every row identical, which PNG's Up filter compresses to nothing).
    for px in range(W):
        u = (px + 0.5) / W
        d.line((px, 0, px, H), fill=scale_rgb(strip_color(palette, u, 0.5), 0.78))

    gap = 1.4
    radius = 2.2
    for (x, y, size, shade) in strip_layout(SEEDS[tier]):
        cx, cy = x + size / 2.0, y + size / 2.0
        u = min(1.0, max(0.0, cx / pw))
        v = min(1.0, max(0.0, cy / ph))
        base = strip_color(palette, u, v)
        # Subtle per-tile variation; smaller on the dark text side.
        amp = 0.035 + 0.035 * u
        fill = scale_rgb(base, 1.0 + shade * amp)
        x0, y0 = (x + gap / 2.0) * k, (y + gap / 2.0) * k
        x1, y1 = (x + size - gap / 2.0) * k, (y + size - gap / 2.0) * k
        d.rounded_rectangle((x0, y0, x1, y1), radius=radius * k, fill=fill)

    return img.resize((pw * scale, ph * scale), Image.LANCZOS)


# --------------------------------------------------------------------------

def main():
    font_path = find_font()
    written = []
    for scale, suffix in DENSITIES:
        p = os.path.join(IMAGES, "icon%s.png" % suffix)
        save_png(make_icon(scale), p, colors=MARK_COLORS)
        written.append(p)
        p = os.path.join(IMAGES, "logo%s.png" % suffix)
        save_png(make_logo(scale, font_path), p, colors=MARK_COLORS)
        written.append(p)
        p = os.path.join(IMAGES, "strip%s.png" % suffix)
        save_png(make_strip("default", scale), p, colors=STRIP_COLORS)
        written.append(p)
        for tier in ("silver", "gold", "platinum"):
            p = os.path.join(TIERS, tier, "strip%s.png" % suffix)
            save_png(make_strip(tier, scale), p, colors=STRIP_COLORS)
            written.append(p)
    for p in written:
        print("wrote", os.path.relpath(p, os.path.dirname(TEMPLATES)), os.path.getsize(p), "bytes")


if __name__ == "__main__":
    main()
