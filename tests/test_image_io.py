import numpy as np
import pytest
from PIL import Image

from dreamlite.errors import DreamLiteError
from dreamlite.image_io import load_image, to_rgb


@pytest.mark.parametrize("make", [
    lambda: Image.new("L", (8, 8), 128),
    lambda: Image.new("RGB", (8, 8), (10, 20, 30)).convert("P"),
    lambda: Image.new("RGBA", (8, 8), (255, 0, 0, 0)),
    lambda: Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16)),
    lambda: Image.new("LA", (8, 8), (0, 255)),
    lambda: Image.new("CMYK", (8, 8)),
])
def test_modes_become_rgb(make, tmp_path):
    image = make()
    path = tmp_path / ("x.tif" if image.mode == "CMYK" else "x.png")
    image.save(path)
    out = load_image(path)
    assert out.mode == "RGB" and out.size == (8, 8)


def test_conversions_keep_content():
    assert to_rgb(Image.new("RGBA", (2, 2), (255, 0, 0, 0))).getpixel((0, 0)) == (255, 255, 255)  # transparent -> white
    assert to_rgb(Image.new("L", (2, 2), 128)).getpixel((0, 0)) == (128, 128, 128)
    sixteen = Image.fromarray(np.full((2, 2), 65535, dtype=np.uint16))
    assert to_rgb(sixteen).getpixel((0, 0)) == (255, 255, 255)


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(DreamLiteError, match="folder"):
        load_image(tmp_path)
