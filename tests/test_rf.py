"""`advconv rf`: a net's fields, theoretical and effective, as a table or one unit's figure."""

from PIL import Image

from advconv.cli import main
from advconv.trained.hub import SHIPPED
from advconv.trained.rf import receptive_fields


def is_png(path) -> bool:
    with Image.open(path) as image:
        return image.format == "PNG"


def test_an_architecture_by_name_prints_its_growth_table_at_random_weights(tmp_path, capsys):
    out = tmp_path / "growth.png"
    assert main(["rf", "--model", "stem8", "--images", "4", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "noise images of 96x96 px" in printed and "random 50%/95%" in printed and "trained" not in printed
    rows = [line.split() for line in printed.splitlines() if line.startswith("c")]
    assert [r[0] for r in rows][-1] == "c4.1.body.0.0.pointwise" and rows[-1][3] == "69"  # summary's field
    assert is_png(out)


def test_a_trained_unit_beside_its_random_start_on_mosaics_of_test_images(checkpoint, image_folder, tmp_path):
    report = receptive_fields(checkpoint, layer="c4", images=4, data=image_folder, output=tmp_path / "c4.png")
    assert list(report.fields) == ["random", "trained"] and "mosaics of 3x3 test images" in report.measured_on
    random, trained = report.fields["random"][0], report.fields["trained"][0]
    assert random.theoretical_side == trained.theoretical_side == 69 and not trained.square.clipped
    assert (random.gradient != trained.gradient).any()
    assert all("95 % side / theoretical" in line for line in report.lines()[1:])
    assert is_png(report.paths[0])


def test_one_image_clips_a_deep_field_and_a_unit_can_be_chosen(checkpoint, tmp_path, capsys):
    image = SHIPPED.parent / "samples" / "cat.jpg"
    assert main(["rf", "--model", str(checkpoint), "--layer", "c2", "--at", "0,0", "--image", str(image),
                 "--output", str(tmp_path / "c2.png")]) == 0
    printed = capsys.readouterr().out
    assert "on cat.jpg at 32x32" in printed and "unit (0, 0)" in printed and "clipped by the input" in printed
    assert main(["rf", "--model", str(checkpoint), "--layer", "c2", "--at", "99,0", "--image", str(image)]) == 2
    assert "no unit at (99, 0)" in capsys.readouterr().err
