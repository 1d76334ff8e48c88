"""Draw the integration's brand images: a LoRaWAN gateway sending radio waves.

Writes custom_components/ttn_gateway/brand/{icon,logo}[@2x].png, transparent
PNGs in the sizes of Home Assistant's brand rules: the icon square at 256 and
512 pixels, the logo with its shortest side at 128 and 256 pixels, trimmed.
Home Assistant 2026.3 and later show them for the integration.

Run it with a Python that has Pillow, for example the newest test venv:

    .venv-newest/bin/python scripts/brand_images.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

BRAND_DIR = (
    Path(__file__).resolve().parent.parent / "custom_components/ttn_gateway/brand"
)
# Drawn this many times larger, then scaled down: smooth edges.
SUPERSAMPLE = 4
BODY = (31, 45, 61, 255)  # dark slate: the gateway
WAVES = (0, 163, 180, 255)  # teal: the radio waves
LED = (87, 214, 120, 255)  # green: the gateway is connected
VENTS = (122, 138, 156, 255)
TEXT = (31, 45, 61, 255)


def draw_gateway(size: int) -> Image.Image:
    """A square transparent image of the gateway, ``size`` pixels wide."""
    big = size * SUPERSAMPLE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)

    def box(x0: float, y0: float, x1: float, y1: float) -> list[float]:
        return [x0 * big, y0 * big, x1 * big, y1 * big]

    # The antenna mast and its tip, centred above the case.
    cx, tip_y = 0.5, 0.30
    draw.rounded_rectangle(
        box(cx - 0.028, tip_y, cx + 0.028, 0.62), radius=0.028 * big, fill=BODY
    )
    draw.ellipse(box(cx - 0.06, tip_y - 0.06, cx + 0.06, tip_y + 0.06), fill=BODY)
    # Three radio waves on each side of the tip.
    width = round(0.045 * big)
    for radius in (0.14, 0.24, 0.34):
        bounds = box(cx - radius, tip_y - radius, cx + radius, tip_y + radius)
        draw.arc(bounds, start=-40, end=40, fill=WAVES, width=width)
        draw.arc(bounds, start=140, end=220, fill=WAVES, width=width)
    # The case, with two status lights.
    draw.rounded_rectangle(box(0.16, 0.60, 0.84, 0.90), radius=0.07 * big, fill=BODY)
    for x in (0.28, 0.40):
        draw.ellipse(box(x - 0.035, 0.715, x + 0.035, 0.785), fill=LED)
    # Vents on the right of the case.
    for x in (0.58, 0.65, 0.72):
        draw.rounded_rectangle(
            box(x - 0.014, 0.69, x + 0.014, 0.81),
            radius=0.014 * big,
            fill=VENTS,
        )
    return image.resize((size, size), Image.Resampling.LANCZOS)


def draw_logo(height: int) -> Image.Image:
    """The gateway with the name beside it, trimmed, ``height`` pixels high."""
    big = height * SUPERSAMPLE
    icon = draw_gateway(big)
    font = ImageFont.load_default(size=round(big * 0.36))
    text = "TTN Gateway"
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font)
    gap = round(big * 0.06)
    canvas = Image.new("RGBA", (big + gap + right - left, big), (0, 0, 0, 0))
    canvas.alpha_composite(icon)
    draw = ImageDraw.Draw(canvas)
    draw.text(
        (big + gap - left, (big - (bottom - top)) / 2 - top), text, font=font, fill=TEXT
    )
    trimmed = canvas.crop(canvas.getbbox())
    scale = height / trimmed.height
    return trimmed.resize(
        (round(trimmed.width * scale), height), Image.Resampling.LANCZOS
    )


def main() -> None:
    """Write the four brand images."""
    BRAND_DIR.mkdir(parents=True, exist_ok=True)
    images = {
        "icon.png": draw_gateway(256),
        "icon@2x.png": draw_gateway(512),
        "logo.png": draw_logo(128),
        "logo@2x.png": draw_logo(256),
    }
    for name, image in images.items():
        image.save(BRAND_DIR / name, optimize=True)
        print(f"{name}: {image.width}x{image.height}")


if __name__ == "__main__":
    main()
