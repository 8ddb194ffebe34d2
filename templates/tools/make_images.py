#!/usr/bin/env python3
"""Regenerate the PNG artwork for the Tessera storeCard template and its coupons.

Usage:  python3 templates/tools/make_images.py

Writes (relative to the templates/ directory):
  default/images/icon{,@2x,@3x}.png    29x29 pt   opaque mosaic "T" emblem
  default/images/logo{,@2x,@3x}.png    160x50 pt  emblem + "Tessera", white on transparent
  default/images/strip{,@2x,@3x}.png   375x123 pt neutral teal mosaic strip
  default/tiers/<tier>/strip{,@2x,@3x}.png  for silver, gold, platinum
  default/offers/free-drink/strip{,@2x,@3x}.png     375x144 pt coupon strip:
                                       mosaic coffee cup on warm brown
  default/offers/double-points/strip{,@2x,@3x}.png  375x144 pt coupon strip:
                                       two overlapping emblems on teal/gold

Everything is deterministic: geometry is defined in points and scaled per
density, randomness is seeded per tier, and every density is rendered at its
own resolution (supersampled, then downsampled) rather than upscaled.
The coupon strips carry no text (their texts are localized in pass.strings)
and keep their left side calm, where Wallet lays the primary field over them.
Requires Pillow and a DejaVu Sans Bold TrueType font (fonts-dejavu-core).
"""

import math
import os
import random
import sys

from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = os.path.dirname(HERE)
DEFAULT = os.path.join(TEMPLATES, "default")
IMAGES = os.path.join(DEFAULT, "images")
TIERS = os.path.join(DEFAULT, "tiers")
OFFERS = os.path.join(DEFAULT, "offers")

DENSITIES = ((1, ""), (2, "@2x"), (3, "@3x"))
SS = 4  # supersampling factor for anti-aliased shapes
STRIP_COLORS = 128  # palette size for strips (64 shows stray tile colours)
MARK_COLORS = 64    # palette size for icon and logo

ICON_PT = (29, 29)
LOGO_PT = (160, 50)
STRIP_PT = (375, 123)
COUPON_STRIP_PT = (375, 144)  # an e-coupon's strip is taller than a store card's

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
COUPON_SEEDS = {"free-drink": 5005, "double-points": 6006}


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
# Coupon strips (one per offer under default/offers/)
# --------------------------------------------------------------------------

MAP_RES = 4  # region-map pixels per point (density independent)

# Region indices of the free-drink picture (sampled at each tile's centre).
BG, CUP, COFFEE, CREMA, SAUCER, STEAM, RIM_SHADE = 0, 1, 2, 3, 4, 5, 6


def coupon_layout(seed, pitch, split):
    """Mosaic tiles in points + per-tile random values, like strip_layout.

    split(cx, cy) says into how many tesserae (n x n, n = 1..3) the tile
    centred there is cut: a mosaicist sets the figure in small tesserae and
    the calm background in large ones (which also keeps the PNGs small).
    """
    rnd = random.Random(seed)
    pw, ph = COUPON_STRIP_PT
    rows = int(ph // pitch) + 2
    cols = int(pw // pitch) + 3
    y_off = (ph - (rows - 1) * pitch) / 2.0 - pitch / 2.0
    tiles = []
    for r in range(rows):
        x_off = -pitch / 2.0 if r % 2 else -pitch
        for c in range(cols):
            x = x_off + c * pitch
            y = y_off + r * pitch
            # Always draw the same numbers, however the tile is cut.
            vals = [(rnd.uniform(-1.0, 1.0), rnd.uniform(-1.0, 1.0),
                     rnd.uniform(-1.0, 1.0), rnd.random()) for _ in range(9)]
            n = split(x + pitch / 2.0, y + pitch / 2.0)
            size = pitch / n
            for i in range(n * n):
                jx, jy, shade, pick = vals[i]
                sx = x + (i % n) * size + jx * size * 0.03
                sy = y + (i // n) * size + jy * size * 0.03
                tiles.append((sx, sy, size, shade, pick))
    return tiles


def render_mosaic(scale, tiles, tile_color, grout_color, gap, radius):
    """Grout columns plus rounded tiles, at supersampled pixels (not reduced).

    gap is in points (at most 15% of a tile, so small tesserae keep their
    share of grout); radius is a fraction of each tile's size. tile_color
    returns a tile's fill; grout_color(u) the grout's at 0 <= u <= 1 across.
    """
    pw, ph = COUPON_STRIP_PT
    k = scale * SS
    W, H = pw * k, ph * k
    img = Image.new("RGB", (W, H))
    d = ImageDraw.Draw(img)
    for px in range(W):
        d.line((px, 0, px, H), fill=grout_color((px + 0.5) / W))
    for (x, y, size, shade, pick) in tiles:
        cx, cy = x + size / 2.0, y + size / 2.0
        fill = tile_color(cx, cy, shade, pick)
        if fill is None:
            continue
        g = min(gap, 0.15 * size)
        x0, y0 = (x + g / 2.0) * k, (y + g / 2.0) * k
        x1, y1 = (x + size - g / 2.0) * k, (y + size - g / 2.0) * k
        d.rounded_rectangle((x0, y0, x1, y1), radius=radius * size * k, fill=fill)
    return img


def sample_region(region_map, cx, cy):
    w, h = region_map.size
    px = min(w - 1, max(0, int(cx * MAP_RES)))
    py = min(h - 1, max(0, int(cy * MAP_RES)))
    return region_map.getpixel((px, py))


# -- free drink: a cup of coffee on a saucer, steam rising -----------------

COFFEE_DARK = (58, 31, 18)      # far left, under the primary field
COFFEE_LIGHT = (138, 84, 48)    # right end, behind the cup
CUP_CREAM = (240, 227, 204)
SAUCER_CREAM = (214, 192, 160)


def free_drink_map():
    """Region map of the picture, in points * MAP_RES (no anti-aliasing)."""
    pw, ph = COUPON_STRIP_PT
    m = Image.new("L", (pw * MAP_RES, ph * MAP_RES), BG)
    d = ImageDraw.Draw(m)

    def P(*pts):  # points -> map pixels
        return [v * MAP_RES for v in pts]

    # Steam: three soft S-curves rising from the cup.
    for i, x in enumerate((273.0, 297.0)):
        pts = []
        top, bottom = 8.0 + 6.0 * i, 43.0
        n = 32
        for s in range(n + 1):
            t = s / float(n)
            y = bottom - (bottom - top) * t
            sway = 4.0 * math.sin(t * 1.2 * math.pi + i * 2.5) * (0.3 + 0.7 * t)
            pts.append(tuple(P(x + sway, y)))
        d.line(pts, fill=STEAM, width=int(8.0 * MAP_RES), joint="curve")

    # Saucer, then the handle ring, then the body over the handle's inner half.
    d.ellipse(P(220, 111, 350, 133), fill=SAUCER)
    d.ellipse(P(312, 64, 350, 100), outline=CUP, width=int(8 * MAP_RES))
    d.polygon([tuple(P(240, 55)), tuple(P(330, 55)),
               tuple(P(319, 104)), tuple(P(251, 104))], fill=CUP)
    d.ellipse(P(251, 90, 319, 120), fill=CUP)
    # Rim, coffee surface and a ring of crema.
    d.ellipse(P(238, 46, 332, 64), fill=CUP)
    d.ellipse(P(244, 49, 326, 61), fill=COFFEE)
    d.ellipse(P(262, 51, 308, 59), fill=CREMA)
    # A shaded band on the body's right side for a little volume.
    d.polygon([tuple(P(310, 64)), tuple(P(329, 64)),
               tuple(P(319, 104)), tuple(P(304, 110))], fill=RIM_SHADE)
    return m


def free_drink_bg(u, v):
    t = u ** 1.5
    c = mix(COFFEE_DARK, COFFEE_LIGHT, t)
    # Warm glow behind the cup, so the cream reads against the brown.
    g = max(0.0, 1.0 - math.hypot((u - 0.76) * 1.6, (v - 0.55) * 0.9) / 0.45)
    c = mix(c, (196, 132, 78), 0.35 * g * g)
    e = min(1.0, min(v, 1.0 - v) / 0.2)
    return scale_rgb(c, 0.92 + 0.08 * e)


def make_free_drink_strip(scale):
    pw, ph = COUPON_STRIP_PT
    region_map = free_drink_map()

    def tile_color(cx, cy, shade, pick):
        u = min(1.0, max(0.0, cx / pw))
        v = min(1.0, max(0.0, cy / ph))
        reg = sample_region(region_map, cx, cy)
        bg = free_drink_bg(u, v)
        if reg == CUP:
            base, amp = scale_rgb(CUP_CREAM, 1.0 - 0.10 * v), 0.03
        elif reg == RIM_SHADE:
            base, amp = scale_rgb(CUP_CREAM, 0.84), 0.03
        elif reg == COFFEE:
            base, amp = (92, 50, 26), 0.06
        elif reg == CREMA:
            base, amp = (176, 118, 64), 0.06
        elif reg == SAUCER:
            base, amp = SAUCER_CREAM, 0.035
        elif reg == STEAM:
            base, amp = mix(bg, CUP_CREAM, 0.24), 0.03
        else:
            base, amp = bg, 0.03 + 0.04 * u
        return scale_rgb(base, 1.0 + shade * amp)

    def grout_color(u):
        return scale_rgb(free_drink_bg(u, 0.5), 0.72)

    def split(cx, cy):
        # Small tesserae wherever the picture reaches into the tile.
        near = any(sample_region(region_map, cx + dx, cy + dy) != BG
                   for dx in (-7.0, 0.0, 7.0) for dy in (-7.0, 0.0, 7.0))
        return 3 if near else 1

    tiles = coupon_layout(COUPON_SEEDS["free-drink"], pitch=16.5, split=split)
    img = render_mosaic(scale, tiles, tile_color, grout_color, gap=1.4, radius=0.16)
    return img.resize((pw * scale, ph * scale), Image.LANCZOS)


# -- double points: two overlapping emblems, a burst and gold confetti -----

TEAL_DARK = (0, 54, 62)
TEAL_LIGHT = (14, 118, 122)
GOLD = (241, 196, 83)           # the coupon's labelColor
GOLD_DEEP = (176, 124, 36)
EMBLEM_CENTER = (292.0, 72.0)   # points


def double_points_bg(u, v):
    t = u ** 1.5
    c = mix(TEAL_DARK, TEAL_LIGHT, t)
    e = min(1.0, min(v, 1.0 - v) / 0.2)
    return scale_rgb(c, 0.92 + 0.08 * e)


def make_double_points_strip(scale):
    pw, ph = COUPON_STRIP_PT
    ex, ey = EMBLEM_CENTER

    def tile_color(cx, cy, shade, pick):
        u = min(1.0, max(0.0, cx / pw))
        v = min(1.0, max(0.0, cy / ph))
        base = double_points_bg(u, v)
        dx, dy = cx - ex, cy - ey
        dist = math.hypot(dx, dy)
        # Sunburst: every other ray a touch lighter, fading with distance.
        ang = math.atan2(dy, dx)
        ray = 1.0 if math.cos(ang * 9.0) > 0.0 else 0.0
        fade = max(0.0, 1.0 - dist / 160.0)
        base = mix(base, (120, 210, 200), 0.20 * ray * fade)
        # Gold confetti in a ring around the emblems, thinning outwards.
        if 58.0 < dist < 100.0:
            p = 0.22 * (1.0 - (dist - 58.0) / 42.0)
            if pick < p:
                return scale_rgb(GOLD if pick < p * 0.6 else GOLD_DEEP, 1.0 + shade * 0.06)
        return scale_rgb(base, 1.0 + shade * (0.03 + 0.03 * u))

    def grout_color(u):
        return scale_rgb(double_points_bg(u, 0.5), 0.70)

    def split(cx, cy):
        # Smaller tesserae in a halo around the emblems.
        return 2 if math.hypot(cx - ex, cy - ey) < 100.0 else 1

    tiles = coupon_layout(COUPON_SEEDS["double-points"], pitch=16.5, split=split)
    img = render_mosaic(scale, tiles, tile_color, grout_color, gap=1.4, radius=0.16)

    # Two tilted 3x3 emblems (the brand mark), the gold one in front: "x2".
    k = scale * SS
    size_pt = 66.0
    emblems = (
        # (centre offset in points, rotation in degrees, light, dark)
        ((-19.0, -9.0), 10.0, (168, 226, 216), (34, 150, 146)),
        ((19.0, 9.0), -8.0, (255, 226, 140), GOLD_DEEP),
    )
    for (ox, oy), angle, light, dark in emblems:
        side = int(round(size_pt * k))
        pad = int(round(12 * k))
        layer = Image.new("RGBA", (side + 2 * pad, side + 2 * pad), (0, 0, 0, 0))
        draw_emblem(ImageDraw.Draw(layer), pad, pad, side,
                    light=light + (255,), dark=dark + (255,),
                    gap_frac=0.10, radius_frac=0.20)
        layer = layer.rotate(angle, resample=Image.BICUBIC)
        # Soft drop shadow from the emblem's own silhouette.
        alpha = layer.getchannel("A").point(lambda a: a * 90 // 255)
        shadow = Image.new("RGBA", layer.size, (0, 0, 0, 0))
        shadow.putalpha(alpha.filter(ImageFilter.GaussianBlur(2.5 * k)))
        cx, cy = (ex + ox) * k, (ey + oy) * k
        x0 = int(round(cx - layer.size[0] / 2.0))
        y0 = int(round(cy - layer.size[1] / 2.0))
        base = img.convert("RGBA")
        base.alpha_composite(shadow, (x0 + int(round(2 * k)), y0 + int(round(3 * k))))
        base.alpha_composite(layer, (x0, y0))
        img = base.convert("RGB")

    return img.resize((pw * scale, ph * scale), Image.LANCZOS)


COUPON_STRIPS = (
    ("free-drink", make_free_drink_strip),
    ("double-points", make_double_points_strip),
)


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
        for offer, make in COUPON_STRIPS:
            p = os.path.join(OFFERS, offer, "strip%s.png" % suffix)
            save_png(make(scale), p, colors=STRIP_COLORS)
            written.append(p)
    for p in written:
        print("wrote", os.path.relpath(p, os.path.dirname(TEMPLATES)), os.path.getsize(p), "bytes")


if __name__ == "__main__":
    main()
