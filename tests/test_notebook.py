"""The example notebook runs, top to bottom, on the tiny dataset: it cannot go stale."""

import pytest

from .conftest import REPO


@pytest.mark.slow
def test_example_notebook_runs(tmp_path, image_folder, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    nb = nbformat.read(REPO / "examples" / "assignment9.ipynb", as_version=4)
    env = {"ADVCONV_DATA": str(image_folder), "ADVCONV_EPOCHS": "1", "ADVCONV_BATCH": "16",
           "ADVCONV_WORK": str(tmp_path)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # the kernel inherits the environment
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO / "examples")}}).execute()
    outputs = "".join(o.get("text", "") for cell in nb.cells for o in cell.get("outputs", []))
    assert "All rules pass." in outputs and "final test accuracy after 1 epochs" in outputs
    assert "predicted:" in outputs
