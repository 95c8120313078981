"""docs/img/readme_example.png: the README example's rainy input, fixed-point result and clean target
side by side. Run from the folder where the README's commands ran:
`python /path/to/docs/img/readme_figure.py docs/img/readme_example.png`."""

import sys

import numpy as np
from PIL import Image, ImageDraw

PANELS = (("rainy input", "rain/input/syn_0000.png"), ("Loihi fixed point", "derained.png"),
          ("clean target", "rain/target/syn_0000.png"))
SCALE, LABEL = 4, 18


def main(out: str) -> None:
    tiles = []
    for label, path in PANELS:
        im = Image.open(path).convert("RGB")
        im = im.resize((im.width * SCALE, im.height * SCALE), Image.NEAREST)
        canvas = Image.new("RGB", (im.width, im.height + LABEL), "white")
        canvas.paste(im, (0, LABEL))
        ImageDraw.Draw(canvas).text((4, 3), label, fill="black")
        tiles.append(np.asarray(canvas))
    gap = np.full((tiles[0].shape[0], 6, 3), 255, np.uint8)
    Image.fromarray(np.concatenate([tiles[0], gap, tiles[1], gap, tiles[2]], axis=1)).save(out)


if __name__ == "__main__":
    main(sys.argv[1])
