"""Training curves: `autoenc plot` from log.csv, and curve.png written by training at each validation."""

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

from autoenc_cli.errors import AutoencError
from autoenc_cli.training.plot import TRAIN_COLOR, VAL_COLOR, curve_image, log_ticks, nice_ticks, plot_log
from autoenc_cli.training.train import TrainConfig, train

LOG = """step,epoch,lr,train_loss,images_per_s,elapsed_s,val_loss,val_psnr
50,1,0.0005,0.969390,467.5,6.8,,
100,1,0.001,0.685287,534.8,12.7,,
154,1,0.00154,0.574582,551.0,19.1,0.597520,15.422
200,2,0.002,0.40,530.0,25.0,,
308,2,0.0018,0.25,540.0,38.2,0.260000,17.846
"""


def color_pixels(img: Image.Image, hex_color: str, box) -> int:
    rgb = np.array(Image.new("RGB", (1, 1), hex_color))[0, 0]
    a = np.asarray(img.crop(box))
    return int(np.all(a == rgb, axis=-1).sum())


@pytest.mark.slow
def test_plot_command_draws_both_panels(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "log.csv").write_text(LOG)
    proc = run_cli("plot", tmp_path / "run")
    assert "curve.png" in proc.stdout
    img = Image.open(tmp_path / "run" / "curve.png")
    assert img.size == (1000, 440) and img.format == "PNG"
    left, right = (80, 90, 480, 380), (580, 90, 980, 380)
    assert color_pixels(img, TRAIN_COLOR, left) > 200  # the training loss line
    assert color_pixels(img, VAL_COLOR, left) > 50  # validation loss dots
    assert color_pixels(img, VAL_COLOR, right) > 200  # the PSNR line
    run_cli("plot", tmp_path / "run" / "log.csv", "-o", tmp_path / "elsewhere.png")
    assert Image.open(tmp_path / "elsewhere.png").size == (1000, 440)


def test_plot_errors_are_one_line(tmp_path):
    proc = run_cli("plot", tmp_path, check=False)
    assert proc.returncode == 1 and "log.csv" in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "log.csv").write_text("step,train_loss\n")
    with pytest.raises(AutoencError, match="no step column or no rows"):
        plot_log(tmp_path)
    (tmp_path / "log.csv").write_text("step,train_loss\n10,\n")
    with pytest.raises(AutoencError, match="no loss values"):
        plot_log(tmp_path)


def test_a_single_row_without_validation_still_plots():
    img = curve_image([{"step": "50", "train_loss": "0.9"}])
    assert color_pixels(img, TRAIN_COLOR, (80, 90, 480, 380)) > 10


def test_ticks_are_round_numbers():
    assert nice_ticks(0, 1000) == [0, 200, 400, 600, 800, 1000]
    assert nice_ticks(15.1, 17.9) == pytest.approx([15.5, 16.0, 16.5, 17.0, 17.5])
    assert log_ticks(0.03, 1.2) == pytest.approx([0.05, 0.1, 0.2, 0.5, 1.0])


def test_training_writes_the_curve_at_each_validation(tiny_imagenet, tmp_path):
    cfg = TrainConfig(data=str(tiny_imagenet), out=str(tmp_path / "run"), epochs=2, batch_size=8, warmup_steps=1,
                      precision="fp32", cache_dir=str(tmp_path / "cache"))
    train(cfg, say=lambda *a: None)
    img = Image.open(tmp_path / "run" / "curve.png")
    assert img.size == (1000, 440)
    assert color_pixels(img, VAL_COLOR, (580, 90, 980, 380)) > 20  # two validation PSNR points


def test_one_validation_point_gets_an_axis_from_step_0_and_the_legend_stays_off_the_data():
    from PIL import ImageDraw

    from autoenc_cli.training.plot import curve_image, panel
    img = curve_image([{"step": "500", "train_loss": "0.5", "val_loss": "0.4", "val_psnr": "20.0"}])
    assert img.size == (1000, 440)

    class Recorder:
        """Records what panel() draws, to check where the ticks and the legend go."""
        def __init__(self):
            self.texts = []
            self.draw = ImageDraw.Draw(img)

        def text(self, xy, text, **kw):
            self.texts.append((xy, text))

        def __getattr__(self, name):
            return getattr(self.draw, name)

    rec = Recorder()
    panel(rec, (580, 90, 980, 380), "psnr", [([(500.0, 20.0)], "#000000", "validation", True)], log_y=False)
    x_labels = [t for (x, y), t in rec.texts if y > 380 and t != "step"]
    assert x_labels[0] == "0" and "500" in x_labels  # whole steps from 0, not 499.5, 500, 500.5
    legend = [(x, y) for (x, y), t in rec.texts if t == "validation"]
    assert legend and all(y < 90 for _, y in legend)  # above the axes box, never over the data
